package cdc_test

import (
	"crypto/sha256"
	"strconv"
)

func sha(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
