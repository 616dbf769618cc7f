package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// row is one scenario's results: every run of every tool.
type row struct {
	Scenario string
	Runs     map[string][]result // tool name -> runs
}

// median returns the median wall time of the runs (the mean of the two
// middle ones for an even count).
func median(rs []result) time.Duration {
	if len(rs) == 0 {
		return 0
	}
	ds := make([]time.Duration, len(rs))
	for i, r := range rs {
		ds[i] = r.Wall
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	if len(ds)%2 == 1 {
		return ds[len(ds)/2]
	}
	return (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
}

// peak returns the highest of a memory field over the runs (-1 if none
// is known).
func peak(rs []result, field func(result) int64) int64 {
	p := int64(-1)
	for _, r := range rs {
		p = max(p, field(r))
	}
	return p
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// timeCell is the median of the runs and, with several, their range.
func timeCell(rs []result) string {
	s := secs(median(rs))
	if len(rs) > 1 {
		lo, hi := rs[0].Wall, rs[0].Wall
		for _, r := range rs {
			lo, hi = min(lo, r.Wall), max(hi, r.Wall)
		}
		s += fmt.Sprintf(" (%.2f-%.2f)", lo.Seconds(), hi.Seconds())
	}
	return s
}

func mib(n int64) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}

// writeTable prints the rows as a Markdown table: per scenario the number
// of runs, the median time of each tool (with the range of several runs), the peak memory of lkbuild's
// client and mkimage and of linuxkit (highest over the runs), and with
// both tools the ratio of the medians lkbuild/linuxkit.
func writeTable(w io.Writer, rows []row, withLinuxKit bool) {
	head := []string{"scenario", "runs", "lkbuild", "lkbuild client peak", "mkimage peak"}
	if withLinuxKit {
		head = append(head, "linuxkit", "linuxkit peak", "lkbuild/linuxkit")
	}
	lines := [][]string{head}
	for _, r := range rows {
		lk := r.Runs["lkbuild"]
		line := []string{r.Scenario, fmt.Sprint(len(lk)), timeCell(lk),
			mib(peak(lk, func(r result) int64 { return r.PeakRSS })), mib(peak(lk, func(r result) int64 { return r.Mkimage }))}
		if withLinuxKit {
			lx := r.Runs["linuxkit"]
			ratio := "-"
			if m := median(lx); m > 0 && len(lk) > 0 {
				ratio = fmt.Sprintf("%.2f", median(lk).Seconds()/m.Seconds())
			}
			line = append(line, timeCell(lx), mib(peak(lx, func(r result) int64 { return r.PeakRSS })), ratio)
		}
		lines = append(lines, line)
	}
	for i, l := range lines {
		fmt.Fprintf(w, "| %s |\n", strings.Join(l, " | "))
		if i == 0 {
			fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(l)))
		}
	}
}
