package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// sample is one side's figure in one repetition.
type sample struct {
	v     float64 // the row's figure, in the row's unit
	calls float64 // provider calls per request; NaN when not counted
	rss   float64 // peak RSS of the server process in MiB; 0 when not measured
	text  string  // rows whose result is a sentence (the big file)
	ok    bool    // for text rows: every check passed
}

func figure(v float64) sample { return sample{v: v, calls: math.NaN()} }

// row is one line of the table: the bridge against a peer, over the
// repetitions (b[i] and p[i] are repetition i; nil when it failed).
type row struct {
	key, measure, unit string
	bridge, peer       string // who the two sides are, when not obvious
	higher             bool   // a higher figure is better
	goal               string
	check              func(s stats) string // "yes", "no" or "–"
	b, p               []*sample
	errs               []string
}

// stats are a row's medians and paired ratio.
type stats struct {
	b, p, ratio     float64 // NaN when missing
	bCalls, pCalls  float64
	bRSS, pRSS      float64
	pairs, reps     int
	bText, pText    string
	bOK, text, have bool
}

func median(xs []float64) float64 {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func (r *row) stats() stats {
	s := stats{reps: len(r.b)}
	col := func(xs []*sample, f func(*sample) float64) float64 {
		var v []float64
		for _, x := range xs {
			if x != nil {
				v = append(v, f(x))
			}
		}
		return median(v)
	}
	s.b = col(r.b, func(x *sample) float64 { return x.v })
	s.p = col(r.p, func(x *sample) float64 { return x.v })
	s.bCalls = col(r.b, func(x *sample) float64 { return x.calls })
	s.pCalls = col(r.p, func(x *sample) float64 { return x.calls })
	nz := func(x *sample) float64 {
		if x.rss == 0 {
			return math.NaN()
		}
		return x.rss
	}
	s.bRSS, s.pRSS = col(r.b, nz), col(r.p, nz)
	var ratios []float64
	for i := range r.b {
		if i < len(r.p) && r.b[i] != nil && r.p[i] != nil && r.p[i].v != 0 {
			ratios = append(ratios, r.b[i].v/r.p[i].v)
		}
	}
	s.pairs, s.ratio = len(ratios), median(ratios)
	for _, x := range r.b {
		if x != nil {
			s.have = true
			if x.text != "" {
				s.text, s.bText, s.bOK = true, x.text, x.ok
			}
		}
	}
	for _, x := range r.p {
		if x != nil && x.text != "" {
			s.pText = x.text
		}
	}
	return s
}

func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "–"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func cell(v float64, unit string, calls, rss float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	s := fmtNum(v) + " " + unit
	if !math.IsNaN(calls) {
		s += fmt.Sprintf(" · %s calls", strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", calls), "0"), "."))
	}
	if !math.IsNaN(rss) {
		s += fmt.Sprintf(" · RSS %.0f MiB", rss)
	}
	return s
}

// markdown is the table.
func markdown(header string, rows []*row) string {
	var b strings.Builder
	b.WriteString(header + "\n\n")
	b.WriteString("| measure | bridge | peer | ratio | goal | met? |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		s := r.stats()
		measure := r.measure
		if r.peer != "" {
			measure += " (peer: " + r.peer + ")"
		}
		var bc, pc, ratio string
		if s.text {
			bc, pc, ratio = s.bText, s.pText, "–"
			if pc == "" {
				pc = "–"
			}
		} else {
			bc = cell(s.b, r.unit, s.bCalls, s.bRSS)
			pc = cell(s.p, r.unit, s.pCalls, s.pRSS)
			ratio = "–"
			if !math.IsNaN(s.ratio) {
				ratio = fmt.Sprintf("%.2f×", s.ratio)
				if s.pairs < s.reps {
					ratio += fmt.Sprintf(" (%d of %d runs)", s.pairs, s.reps)
				}
			}
		}
		met := "–"
		if r.check != nil && s.have {
			met = r.check(s)
		}
		if len(r.errs) > 0 {
			bc += " (" + fmt.Sprintf("%d failed: %s", len(r.errs), firstLine(r.errs[0])) + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", measure, bc, pc, ratio, r.goal, met)
	}
	return b.String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// Goal checks.
func ratioAtLeast(x float64) func(stats) string {
	return func(s stats) string {
		if math.IsNaN(s.ratio) {
			return "–"
		}
		return yesNo(s.ratio >= x)
	}
}

func ratioAtMost(x float64) func(stats) string {
	return func(s stats) string {
		if math.IsNaN(s.ratio) {
			return "–"
		}
		return yesNo(s.ratio <= x)
	}
}

func bridgeAtMost(x float64) func(stats) string {
	return func(s stats) string {
		if math.IsNaN(s.b) {
			return "–"
		}
		return yesNo(s.b <= x)
	}
}

// flat: no dearer than 1.2× the peer, with the same provider calls.
func flat(s stats) string {
	if math.IsNaN(s.ratio) {
		return "–"
	}
	return yesNo(s.ratio <= 1.2 && s.bCalls <= s.pCalls)
}

func textOK(s stats) string { return yesNo(s.bOK) }
