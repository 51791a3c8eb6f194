package config_test

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/upicdc/upicdc/config"
)

func ExampleLoad() {
	// A command's flags: only those set on the command line override.
	flags := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	flags.String("data-dir", "./upicdc-data", "data directory")
	_ = flags.Parse([]string{"--data-dir", "/var/lib/upicdc"})

	environ := map[string]string{"UPICDC_STREAM_TRIGGER": "@every 1m"}
	c, err := config.Load(config.LoadOptions{
		File:      "../examples/upicdc.yaml",
		Flags:     flags,
		FlagKeys:  map[string]string{"data-dir": "data_dir"},
		LookupEnv: func(k string) (string, bool) { v, ok := environ[k]; return v, ok },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	trigger, _ := c.StreamTrigger()
	fmt.Println(c.InboxDir())
	fmt.Println(trigger.Kind, trigger)
	// Output:
	// /var/lib/upicdc/inbox
	// cron @every 1m
}

func ExampleLoad_error() {
	_, err := config.Load(config.LoadOptions{
		File:      "testdata/several.bad.yaml",
		LookupEnv: func(string) (string, bool) { return "", false },
	})
	fmt.Println(err)
	// Output:
	// config testdata/several.bad.yaml: log.level: "loud" is not one of debug, info, warn, error
	// config testdata/several.bad.yaml: stream.trigger: "5x" is not a duration, "availableNow" or a cron spec
	// config testdata/several.bad.yaml: stream.max_versions_per_trigger: "0" must be at least 1
	// config testdata/several.bad.yaml: http.listen: "nowhere" is not host:port (e.g. "127.0.0.1:8080", ":8080"): missing port in address
}

func ExampleParseTrigger() {
	for _, s := range []string{"5s", "0s", "availableNow", "*/5 * * * *", "5x"} {
		t, err := config.ParseTrigger(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s: %s\n", t.Kind, t)
	}
	// Output:
	// interval: 5s
	// interval: 0s
	// availableNow: availableNow
	// cron: */5 * * * *
	// "5x" is not a duration, "availableNow" or a cron spec
}
