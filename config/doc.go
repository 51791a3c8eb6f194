// Package config is upicdc's typed configuration: the Config struct, its
// defaults, loading it from a file, UPICDC_* environment variables and
// command-line flags, and checking it.
//
// Configuration is read once, at start (and again on SIGHUP), by Load:
//
//	defaults (Default) < file (--config or $UPICDC_CONFIG) < UPICDC_* environment < flags
//
// Load refuses a bad configuration with an error that names every bad key, one
// per line, for example
//
//	config upicdc.yaml: stream.trigger: "5x" is not a duration, "availableNow" or a cron spec
//
// Components never see viper: they receive the plain values of a Config (or
// the parsed forms from Config.StreamTrigger, Config.ExportSchedule and
// Config.Location). viper is used only inside Load, through a fresh
// viper.New() per call, so loading has no global state and may be repeated.
//
// Caveats:
//   - An environment variable that is set but empty counts as unset, as it
//     does in viper; so does a key written with no value (null) in the file.
//   - Relative paths (data_dir, inbox.dir, export.dir) are relative to the
//     working directory of the process, not to the config file.
//   - Cron specs (stream.trigger, export.schedule) are evaluated in the time
//     zone of the times the scheduler passes to them (the machine's local time
//     in the daemon) unless they start with CRON_TZ=Area/City. input.timezone
//     applies to input data only.
//   - input.timezone needs the IANA time zone database, from the system or
//     from the time/tzdata package linked into the binary.
package config
