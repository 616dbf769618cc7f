// Package buildarg reads the values that lkbuild takes both as build-args
// and on its own command line: a disk size in LinuxKit's --size syntax
// (the SIZE build-arg, `lkbuild run --disk FILE,SIZE`) and
// SOURCE_DATE_EPOCH (the build-arg, the --epoch flags of the in-build
// helper commands), so that one spelling means the same everywhere.
//
// It imports nothing of BuildKit.
package buildarg

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

const (
	// MaxEpoch is the largest SOURCE_DATE_EPOCH, 2106-02-07 06:28:15 UTC:
	// newc cpio and SquashFS store seconds since 1970 in 32 unsigned bits
	// (docs/formats.md lists every format's range).
	MaxEpoch = 1<<32 - 1
	// MaxSize is the largest disk size: the disk formats hold one MBR
	// partition or one FAT32 filesystem, both of which end at 2 TiB.
	MaxSize = 2 << 40
)

// Epoch reads a SOURCE_DATE_EPOCH value: a whole number of seconds from 0
// to MaxEpoch. "" is unset (nil).
func Epoch(v string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > MaxEpoch {
		return nil, fmt.Errorf("%q is not a valid timestamp: want a whole number of seconds from 0 to %d (1970-01-01 00:00:00 to %s UTC), the range of the 32-bit timestamps of newc cpio and SquashFS",
			v, uint64(MaxEpoch), time.Unix(MaxEpoch, 0).UTC().Format(time.DateTime))
	}
	return EpochAt(int64(n)), nil
}

// EpochAt returns the time sec seconds after 1970-01-01 UTC, in UTC, or
// nil (unset) when sec is negative, as the --epoch flags' default -1 is.
func EpochAt(sec int64) *time.Time {
	if sec < 0 {
		return nil
	}
	t := time.Unix(sec, 0).UTC()
	return &t
}

// Size parses a disk size as LinuxKit's --size takes it: a positive
// number with an optional K, M, G or T suffix (binary units, an optional
// trailing "B" or "iB"); a bare number is MiB. The size must be at most
// MaxSize. "" is 0 (no size set).
func Size(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	num := strings.TrimSpace(s)
	up := strings.ToUpper(num)
	up = strings.TrimSuffix(strings.TrimSuffix(up, "IB"), "B")
	shift := 20
	if n := len(up); n > 0 {
		switch up[n-1] {
		case 'K':
			shift, up = 10, up[:n-1]
		case 'M':
			shift, up = 20, up[:n-1]
		case 'G':
			shift, up = 30, up[:n-1]
		case 'T':
			shift, up = 40, up[:n-1]
		}
	}
	v, err := strconv.ParseInt(up, 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("invalid size %q: want a positive number with an optional K, M, G or T suffix (e.g. 1G, 2048M)", s)
	}
	if v > MaxSize>>shift {
		return 0, fmt.Errorf("size %q is larger than 2T, the largest disk lkbuild writes (an MBR partition and FAT32 end at 2 TiB)", s)
	}
	return v << shift, nil
}

// BoolValues is the exact set of values a boolean build-arg takes, as
// messages, --help, `--call outline` and the docs spell it: true and 1
// are on, false and 0 are off, in lower case only. Anything else (True,
// FALSE, yes, off, t) is refused rather than guessed at.
const BoolValues = "true, false, 1 or 0"

// Bool reads the value of a boolean build-arg: true or 1 is on, false or
// 0 is off; anything else is an error naming BoolValues. An empty value
// (the build-arg unset) is the caller's default, not read here.
func Bool(v string) (bool, error) {
	switch v {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean: want exactly %s (in lower case)", v, BoolValues)
}
