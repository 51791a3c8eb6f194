package cdc_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

func TestParseAmount(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want store.Paise
	}{
		{"whole", "500", 50000},
		{"one decimal", "500.0", 50000},
		{"two decimals", "500.50", 50050},
		{"half rupee", "0.5", 50},
		{"one paisa", "0.01", 1},
		{"zero", "0", 0},
		{"zero with decimals", "0.00", 0},
		{"leading dot", ".5", 50},
		{"trailing dot", "5.", 500},
		{"leading zeros", "000500.25", 50025},
		{"surrounding spaces", "  12.34\t", 1234},
		{"seed amount", "1500.0", 150000},
		{"max", "9999999999999999.99", store.MaxPaise},
		{"16 digits after leading zeros", "0009999999999999999.99", store.MaxPaise},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cdc.ParseAmount(tc.in)
			if err != nil {
				t.Fatalf("ParseAmount(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("ParseAmount(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseAmountErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the whole message
	}{
		{"empty", "", `empty amount`},
		{"blank", "   ", `empty amount`},
		{"negative", "-5", `"-5" is negative`},
		{"negative zero", "-0.00", `"-0.00" is negative`},
		{"three decimals", "12.345", `"12.345" has more than 2 decimals`},
		{"three zero decimals", "12.000", `"12.000" has more than 2 decimals`},
		{"dot alone", ".", `"." has no digits`},
		{"exponent", "5e2", `"5e2" is not a plain decimal number (only digits and one '.'; no sign, exponent, NaN or Inf)`},
		{"NaN", "NaN", `"NaN" is not a plain decimal number (only digits and one '.'; no sign, exponent, NaN or Inf)`},
		{"Inf", "+Inf", `"+Inf" is not a plain decimal number (only digits and one '.'; no sign, exponent, NaN or Inf)`},
		{"hex", "0x10", `"0x10" is not a plain decimal number (only digits and one '.'; no sign, exponent, NaN or Inf)`},
		{"plus sign", "+5", `"+5" is not a plain decimal number (only digits and one '.'; no sign, exponent, NaN or Inf)`},
		{"two dots", "1.2.3", `"1.2.3" is not a plain decimal number (only digits and one '.'; no sign, exponent, NaN or Inf)`},
		{"thousands separator", "1,000", `"1,000" is not a plain decimal number (only digits and one '.'; no sign, exponent, NaN or Inf)`},
		{"currency", "₹500", `"₹500" is not a plain decimal number (only digits and one '.'; no sign, exponent, NaN or Inf)`},
		{"unicode digit", "５00", `"５00" is not a plain decimal number (only digits and one '.'; no sign, exponent, NaN or Inf)`},
		{"inner space", "5 00", `"5 00" is not a plain decimal number (only digits and one '.'; no sign, exponent, NaN or Inf)`},
		{"17 integer digits", "10000000000000000", `"10000000000000000" is too large (more than 16 integer digits does not fit decimal(18,2))`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cdc.ParseAmount(tc.in)
			if err == nil {
				t.Fatalf("ParseAmount(%q) = %d, want an error", tc.in, got)
			}
			if !errors.Is(err, cdc.ErrBadAmount) {
				t.Errorf("ParseAmount(%q) error %v does not match ErrBadAmount", tc.in, err)
			}
			if err.Error() != tc.want {
				t.Errorf("ParseAmount(%q) error\n got: %s\nwant: %s", tc.in, err, tc.want)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	utc := func(s string) int64 {
		t.Helper()
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMicro()
	}
	tests := []struct {
		name string
		in   string
		loc  *time.Location
		want int64
	}{
		{"space, nil location is UTC", "2024-12-21 10:00:00", nil, utc("2024-12-21T10:00:00Z")},
		{"T separator", "2024-12-21T10:00:00", nil, utc("2024-12-21T10:00:00Z")},
		{"lower-case t", "2024-12-21t10:00:00", nil, utc("2024-12-21T10:00:00Z")},
		{"explicit UTC location", "2024-12-21 10:00:00", time.UTC, utc("2024-12-21T10:00:00Z")},
		{"no zone in Kolkata", "2024-12-21 10:00:00", kolkata, utc("2024-12-21T04:30:00Z")},
		{"Z beats location", "2024-12-21T10:00:00Z", kolkata, utc("2024-12-21T10:00:00Z")},
		{"lower-case z", "2024-12-21T10:00:00z", nil, utc("2024-12-21T10:00:00Z")},
		{"offset beats location", "2024-12-21T10:00:00+05:30", time.UTC, utc("2024-12-21T04:30:00Z")},
		{"negative offset", "2024-12-21T10:00:00-08:00", nil, utc("2024-12-21T18:00:00Z")},
		{"space and offset", "2024-12-21 10:00:00+05:30", nil, utc("2024-12-21T04:30:00Z")},
		{"one fraction digit", "2024-12-21 10:00:00.5", nil, utc("2024-12-21T10:00:00.5Z")},
		{"micro fraction", "2024-12-21T10:00:00.123456", nil, utc("2024-12-21T10:00:00.123456Z")},
		{"fraction and zone", "2024-12-21T10:00:00.000001Z", nil, utc("2024-12-21T10:00:00.000001Z")},
		{"nano digits that are zeros", "2024-12-21T10:00:00.123456000Z", nil, utc("2024-12-21T10:00:00.123456Z")},
		{"surrounding spaces", " 2024-12-21 10:00:00 ", nil, utc("2024-12-21T10:00:00Z")},
		{"leap day", "2024-02-29 00:00:00", nil, utc("2024-02-29T00:00:00Z")},
		{"epoch", "1970-01-01T00:00:00Z", nil, 0},
		{"before epoch", "1969-12-31T23:59:59.999999Z", nil, -1},
		{"first instant", "0001-01-01T00:00:00Z", nil, utc("0001-01-01T00:00:00Z")},
		{"last instant", "9999-12-31T23:59:59.999999Z", nil, utc("9999-12-31T23:59:59.999999Z")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cdc.ParseTime(tc.in, tc.loc)
			if err != nil {
				t.Fatalf("ParseTime(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("ParseTime(%q) = %d (%s), want %d (%s)", tc.in,
					got, time.UnixMicro(got).UTC().Format(time.RFC3339Nano),
					tc.want, time.UnixMicro(tc.want).UTC().Format(time.RFC3339Nano))
			}
		})
	}
}

func TestParseTimeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		why  string // the part of the message after the quoted input
	}{
		{"empty", "", "is not a timestamp"},
		{"date only", "2024-12-21", "is not a timestamp"},
		{"no seconds", "2024-12-21 10:00", "is not a timestamp"},
		{"slashes", "2024/12/21 10:00:00", "is not a timestamp"},
		{"day first", "21-12-2024 10:00:00", "is not a timestamp"},
		{"epoch number", "1734775200", "is not a timestamp"},
		{"letters in date", "2024-1a-21 10:00:00", "is not a timestamp"},
		{"signed field", "2024-+1-21 10:00:00", "is not a timestamp"},
		{"month 13", "2024-13-01 10:00:00", "is not a valid date and time"},
		{"month 0", "2024-00-01 10:00:00", "is not a valid date and time"},
		{"Feb 30", "2024-02-30 10:00:00", "is not a valid date and time"},
		{"Feb 29 of non-leap year", "2023-02-29 10:00:00", "is not a valid date and time"},
		{"hour 24", "2024-12-21 24:00:00", "is not a valid date and time"},
		{"minute 60", "2024-12-21 10:60:00", "is not a valid date and time"},
		{"leap second", "2024-12-31 23:59:60", "is not a valid date and time"},
		{"year 0", "0000-01-01 00:00:00", "is not a valid date and time"},
		{"empty fraction", "2024-12-21 10:00:00.", "has an empty fraction"},
		{"7 fraction digits", "2024-12-21 10:00:00.1234567", "has precision finer than microseconds"},
		{"nanoseconds", "2024-12-21T10:00:00.123456789Z", "has precision finer than microseconds"},
		{"10 fraction digits", "2024-12-21 10:00:00.0000000000", "has precision finer than nanoseconds"},
		{"zone without colon", "2024-12-21T10:00:00+0530", "has unexpected text after the time"},
		{"zone name", "2024-12-21 10:00:00 IST", "has unexpected text after the time"},
		{"zone hour 24", "2024-12-21T10:00:00+24:00", "has a bad zone offset"},
		{"zone minute 60", "2024-12-21T10:00:00+05:60", "has a bad zone offset"},
		{"trailing garbage", "2024-12-21 10:00:00abc", "has unexpected text after the time"},
		{"comma fraction", "2024-12-21 10:00:00,5", "has unexpected text after the time"},
		{"before year 1 in UTC", "0001-01-01T00:00:00+01:00", "is outside years 0001-9999 in UTC"},
		{"after year 9999 in UTC", "9999-12-31T23:00:00-01:00", "is outside years 0001-9999 in UTC"},
	}
	const layouts = " (want 2006-01-02 15:04:05, 2006-01-02T15:04:05 or RFC 3339 with a zone)"
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cdc.ParseTime(tc.in, nil)
			if err == nil {
				t.Fatalf("ParseTime(%q) = %d, want an error", tc.in, got)
			}
			if !errors.Is(err, cdc.ErrBadTime) {
				t.Errorf("ParseTime(%q) error %v does not match ErrBadTime", tc.in, err)
			}
			want := `"` + tc.in + `" ` + tc.why + layouts
			if tc.in == "" {
				want = `"" ` + tc.why + layouts
			}
			if err.Error() != want {
				t.Errorf("ParseTime(%q) error\n got: %s\nwant: %s", tc.in, err, want)
			}
			if !strings.Contains(err.Error(), `"`+tc.in+`"`) {
				t.Errorf("error %q does not quote the input", err)
			}
		})
	}
}

// TestParseTimeLocationDST checks a zone with daylight saving: the same wall
// clock maps to different offsets in winter and summer.
func TestParseTimeLocationDST(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	for _, tc := range []struct{ in, want string }{
		{"2024-01-15 12:00:00", "2024-01-15T17:00:00Z"},
		{"2024-07-15 12:00:00", "2024-07-15T16:00:00Z"},
	} {
		got, err := cdc.ParseTime(tc.in, ny)
		if err != nil {
			t.Fatal(err)
		}
		if s := time.UnixMicro(got).UTC().Format(time.RFC3339); s != tc.want {
			t.Errorf("ParseTime(%q, New York) = %s, want %s", tc.in, s, tc.want)
		}
	}
}
