package cdc

import (
	"strings"
	"time"

	"github.com/upicdc/upicdc/store"
)

// maxAmountIntDigits is how many integer digits an amount may have: with the
// two decimals that makes the 18 digits of decimal(18,2), so any amount that
// passes the digit count is at most store.MaxPaise and cannot overflow int64.
const maxAmountIntDigits = 16

// ParseAmount parses a non-negative decimal amount of rupees ("500",
// "500.0", "500.50", "0.5", ".5") into paise. Surrounding spaces are
// trimmed. It works on the digits alone, never through a float, so every
// accepted input is represented exactly. Errors wrap ErrBadAmount and say
// why: empty, negative, more than 2 decimals, anything but ASCII digits and
// one '.', or more than 16 integer digits (beyond decimal(18,2)), quoting
// (the start of) the input.
func ParseAmount(s string) (store.Paise, error) {
	t := strings.TrimSpace(s)
	switch {
	case t == "":
		return 0, reasonf(ErrBadAmount, "empty amount")
	case t[0] == '-':
		return 0, reasonf(ErrBadAmount, "%s is negative", quote(s))
	case t == ".":
		return 0, reasonf(ErrBadAmount, "%s has no digits", quote(s))
	}
	intPart, fracPart, _ := strings.Cut(t, ".")
	if !allDigits(intPart) || !allDigits(fracPart) {
		return 0, reasonf(ErrBadAmount, "%s is not a plain decimal number (only digits and one '.'; no sign, exponent, NaN or Inf)", quote(s))
	}
	if len(fracPart) > 2 {
		return 0, reasonf(ErrBadAmount, "%s has more than 2 decimals", quote(s))
	}
	intPart = strings.TrimLeft(intPart, "0")
	if len(intPart) > maxAmountIntDigits {
		return 0, reasonf(ErrBadAmount, "%s is too large (more than %d integer digits does not fit decimal(18,2))", quote(s), maxAmountIntDigits)
	}
	var p store.Paise
	for i := 0; i < len(intPart); i++ {
		p = p*10 + store.Paise(intPart[i]-'0')
	}
	// Pad the fraction to exactly two digits: "5" means 50 paise.
	for i := 0; i < 2; i++ {
		p *= 10
		if i < len(fracPart) {
			p += store.Paise(fracPart[i] - '0')
		}
	}
	return p, nil
}

// allDigits reports whether s holds only ASCII digits; "" counts, so that
// ".5" and "5." are accepted like most CSV writers expect.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// The range of transaction_time that Delta Lake and Spark can hold: years
// 0001 to 9999, in microseconds since the Unix epoch.
const (
	minMicros = -62135596800 * 1_000_000                 // 0001-01-01T00:00:00Z
	maxMicros = 253402300799*1_000_000 + (1_000_000 - 1) // 9999-12-31T23:59:59.999999Z
)

// ParseTime parses a transaction_time and returns it in microseconds since
// the Unix epoch, UTC. Accepted forms:
//
//	2024-12-21 10:00:00          no zone: read in loc (nil means UTC)
//	2024-12-21T10:00:00.123456   'T' or ' ' between date and time; a fraction of up to 6 digits
//	2024-12-21T10:00:00+05:30    RFC 3339 with a zone ('Z' or ±hh:mm)
//
// A fraction may have 7 to 9 digits only when the digits past the sixth are
// zeros (nanosecond writers pad them); anything finer than a microsecond is
// refused rather than silently truncated, because two distinct times would
// otherwise collapse into one and change how rows of a transaction order.
// A wall-clock time that loc skips or repeats at a daylight-saving change
// resolves the way time.Date resolves it. Errors wrap ErrBadTime and quote
// (the start of) the input.
func ParseTime(s string, loc *time.Location) (int64, error) {
	if loc == nil {
		loc = time.UTC
	}
	t := strings.TrimSpace(s)
	bad := func(why string) (int64, error) {
		return 0, reasonf(ErrBadTime, "%s %s (want 2006-01-02 15:04:05, 2006-01-02T15:04:05 or RFC 3339 with a zone)", quote(s), why)
	}
	// The fixed part: "2006-01-02T15:04:05" is 19 bytes.
	if len(t) < 19 || t[4] != '-' || t[7] != '-' || t[13] != ':' || t[16] != ':' ||
		(t[10] != 'T' && t[10] != 't' && t[10] != ' ') {
		return bad("is not a timestamp")
	}
	year, ok1 := digits(t[0:4])
	month, ok2 := digits(t[5:7])
	day, ok3 := digits(t[8:10])
	hour, ok4 := digits(t[11:13])
	minute, ok5 := digits(t[14:16])
	sec, ok6 := digits(t[17:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 {
		return bad("is not a timestamp")
	}
	if year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month) ||
		hour > 23 || minute > 59 || sec > 59 {
		return bad("is not a valid date and time")
	}
	rest := t[19:]

	var nanos int
	if rest != "" && rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		frac := rest[1:n]
		switch {
		case frac == "":
			return bad("has an empty fraction")
		case len(frac) > 9:
			return bad("has precision finer than nanoseconds")
		case len(frac) > 6 && strings.Trim(frac[6:], "0") != "":
			return bad("has precision finer than microseconds")
		}
		for i := 0; i < 9; i++ {
			nanos *= 10
			if i < len(frac) {
				nanos += int(frac[i] - '0')
			}
		}
		rest = rest[n:]
	}

	zone := loc
	switch {
	case rest == "":
	case rest == "Z" || rest == "z":
		zone = time.UTC
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		zh, okh := digits(rest[1:3])
		zm, okm := digits(rest[4:6])
		if !okh || !okm || zh > 23 || zm > 59 {
			return bad("has a bad zone offset")
		}
		off := zh*3600 + zm*60
		if rest[0] == '-' {
			off = -off
		}
		zone = time.FixedZone("", off)
	default:
		return bad("has unexpected text after the time")
	}
	us := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, zone).UnixMicro()
	if us < minMicros || us > maxMicros {
		return bad("is outside years 0001-9999 in UTC")
	}
	return us, nil
}

// digits parses a short run of ASCII digits; strconv.Atoi would also take a
// sign, which no part of a timestamp may have.
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// daysIn returns the number of days in month of year (proleptic Gregorian).
func daysIn(year, month int) int {
	// Day 0 of the next month is the last day of this one.
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
