package main

import (
	"github.com/spf13/cobra"
)

// deltaCommands are the Delta Lake export and reader commands.
func deltaCommands(a *app) []*cobra.Command { return nil }
