package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/agent-sidecar/sidecar/sidecar/budget"
	"github.com/agent-sidecar/sidecar/sidecar/spend"
)

// maxUsageLines bounds the models `sidecar status` lists under usage; the
// rest are counted on one line.
const maxUsageLines = 10

// printUsage prints today's tokens and cost by model, most expensive first,
// after the total. Nothing when no answer reported usage today.
func printUsage(w io.Writer, u *spend.UsageToday, p palette) {
	if u == nil || len(u.Models) == 0 {
		return
	}
	type row struct {
		label string
		m     spend.ModelUsage
	}
	rows := make([]row, 0, len(u.Models))
	var tokens int64
	unpriced := false
	for label, m := range u.Models {
		rows = append(rows, row{label, m})
		tokens += m.Tokens()
		unpriced = unpriced || !m.Priced
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(b.m.CostUSD, a.m.CostUSD), cmp.Compare(b.m.Tokens(), a.m.Tokens()), strings.Compare(a.label, b.label))
	})
	total := usd(u.TotalCostUSD)
	if unpriced {
		total += " (models without a price not counted)"
	}
	fmt.Fprintf(w, "%-10s today (%s UTC): %s, %s tokens\n", "usage", u.Day, total, tokenCount(tokens))
	for i, r := range rows {
		if i == maxUsageLines {
			fmt.Fprintf(w, "%-10s %s\n", "", p.dim(fmt.Sprintf("and %d more models", len(rows)-i)))
			break
		}
		cost := usd(r.m.CostUSD)
		if !r.m.Priced {
			cost = p.dim("no price")
			if r.m.CostUSD > 0 { // priced for part of the day
				cost = usd(r.m.CostUSD) + " " + p.dim("(no price for some answers)")
			}
		}
		parts := []string{tokenCount(r.m.Input) + " in"}
		if r.m.CachedInput > 0 {
			parts = append(parts, tokenCount(r.m.CachedInput)+" cached")
		}
		if r.m.CacheWrite > 0 {
			parts = append(parts, tokenCount(r.m.CacheWrite)+" cache writes")
		}
		parts = append(parts, tokenCount(r.m.Output)+" out")
		answers := fmt.Sprintf("%d answers", r.m.Answers)
		if r.m.Answers == 1 {
			answers = "1 answer"
		}
		fmt.Fprintf(w, "%-10s %s: %s; %s tokens in %s\n", "", r.label, cost, strings.Join(parts, ", "), answers)
	}
}

// usd prints an amount of US dollars: to the cent, or to a hundredth of a
// cent below one cent so that a small spend does not read as nothing.
func usd(v float64) string {
	if v > 0 && v < 0.01 {
		return fmt.Sprintf("$%.4f", v)
	}
	return fmt.Sprintf("$%.2f", v)
}

// tokenCount prints a count of tokens shortly: 950, 12.3k, 200k, 4.2M,
// 1.1B.
func tokenCount(n int64) string {
	f := float64(n)
	short := func(v float64, unit string) string {
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") + unit
	}
	switch {
	case n < 1000:
		return fmt.Sprint(n)
	case n < 999_950:
		return short(f/1e3, "k")
	case n < 999_950_000:
		return short(f/1e6, "M")
	}
	return short(f/1e9, "B")
}

// printBudgets prints each budget: its state, what was spent of its limits
// this window, what is left and when the window resets (UTC, with the date
// when that is more than a day away). Nothing without budgets.
func printBudgets(w io.Writer, budgets []budget.Status, now time.Time, p palette) {
	for i, b := range budgets {
		label := ""
		if i == 0 {
			label = "budgets"
		}
		state := b.State
		switch b.State {
		case budget.StateOK:
			state = p.good(state)
		case budget.StateWarning:
			state = p.warn(state)
		case budget.StateExceeded:
			state = p.bad(state)
		}
		var spent, left []string
		if b.Limit.CostUSD > 0 {
			spent = append(spent, usd(b.Spent.CostUSD)+"/"+usd(b.Limit.CostUSD))
			left = append(left, usd(b.Left.CostUSD))
		}
		if b.Limit.Tokens > 0 {
			spent = append(spent, tokenCount(b.Spent.Tokens)+"/"+tokenCount(b.Limit.Tokens)+" tokens")
			left = append(left, tokenCount(b.Left.Tokens)+" tokens")
		}
		resets := b.ResetsAt.UTC().Format("15:04:05")
		if b.ResetsAt.Sub(now) > 24*time.Hour {
			resets = b.ResetsAt.UTC().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(w, "%-10s %s: %s (%s, %s window), %s spent, %s left, resets at %s UTC\n", label, b.Name, state,
			b.Action, orDefault(b.Window, "?"), strings.Join(spent, " and "), strings.Join(left, " and "), resets)
	}
}
