package backup

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Cron is a parsed five-field cron expression (minute hour day-of-month
// month day-of-week), read by github.com/robfig/cron/v3: lists, ranges,
// steps, names (JAN, MON), descriptors (@daily, @hourly, ...) and a leading
// CRON_TZ=Zone. Two readings are brought in line with cron(8) (Debian's
// Vixie cron): a day-of-month or day-of-week field that starts with `*`
// (`*/2`) counts as unrestricted when the other day field is restricted
// (cron(8) ANDs the two then, robfig ORs them), and an expression that never
// matches is refused.
type Cron struct {
	expr string
	spec *cron.SpecSchedule
	tz   bool // the expression names its own zone (CRON_TZ=)
}

// robfigStarBit is robfig/cron's marker for a day field read as "*" (the
// unexported starBit, bit 63 of the field's set). dayMatches ANDs the two
// day fields when either carries it.
const robfigStarBit = 1 << 63

// matchHorizon is how far ahead a match is looked for: robfig's own limit
// (five years), enough for 29 February.
const matchHorizon = "5 years"

// ParseCron parses an expression for `backup daemon`, CRON_TZ= included.
func ParseCron(expr string) (*Cron, error) {
	e := strings.TrimSpace(expr)
	if e == "" {
		return nil, fmt.Errorf("empty cron expression: want 5 fields (minute hour day-of-month month day-of-week) or @daily etc.")
	}
	if strings.HasPrefix(e, "@every") || e == "@reboot" {
		return nil, fmt.Errorf("cron expression %q: %s is not supported; use 5 fields or @hourly/@daily/@weekly/@monthly/@yearly", expr, strings.Fields(e)[0])
	}
	if strings.ContainsAny(e, "\n\r") {
		return nil, fmt.Errorf("cron expression %q holds a line break", expr)
	}
	sched, err := cron.ParseStandard(e)
	if err != nil {
		hint := ""
		if strings.Contains(err.Error(), "above maximum (6)") {
			hint = " (day of week is 0-6 or SUN-SAT; Sunday is 0)"
		}
		return nil, fmt.Errorf("cron expression %q: %v%s", expr, err, hint)
	}
	spec, ok := sched.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("cron expression %q is not a calendar schedule", expr)
	}
	c := &Cron{expr: e, spec: spec}
	fields := strings.Fields(e)
	if strings.HasPrefix(fields[0], "CRON_TZ=") || strings.HasPrefix(fields[0], "TZ=") {
		c.tz = true
		fields = fields[1:]
	}
	if len(fields) == 5 { // not a descriptor
		if strings.HasPrefix(fields[2], "*") {
			spec.Dom |= robfigStarBit
		}
		if strings.HasPrefix(fields[4], "*") {
			spec.Dow |= robfigStarBit
		}
	}
	if c.Next(time.Now()).IsZero() {
		return nil, fmt.Errorf("cron expression %q never matches (no such date in the next %s, e.g. 31 February); fix the day and month fields", expr, matchHorizon)
	}
	return c, nil
}

// ParseCronForCron parses an expression for an entry cron(8) runs: as
// ParseCron, but without CRON_TZ= (Debian's cron runs every job in the
// host's local time zone and does not read it).
func ParseCronForCron(expr string) (*Cron, error) {
	c, err := ParseCron(expr)
	if err != nil {
		return nil, err
	}
	if c.tz {
		return nil, fmt.Errorf("cron expression %q: cron(8) runs jobs in the host's local time zone and does not read CRON_TZ=; drop it (CRON_TZ= is for `backup daemon`)", expr)
	}
	return c, nil
}

func (c *Cron) String() string { return c.expr }

// Location is the zone the expression is read in: its CRON_TZ, else local.
func (c *Cron) Location() *time.Location { return c.spec.Location }

// Next returns the first time after t that the expression matches, in the
// expression's zone; the zero time when there is none within five years.
func (c *Cron) Next(t time.Time) time.Time {
	n := c.spec.Next(t)
	if n.IsZero() {
		return n
	}
	return n.In(c.Location())
}

// Overdue reports whether a job on this schedule whose last success was at
// last has since missed two runs: two scheduled times after last have
// passed by now. A zero last is overdue once two runs after since passed.
func (c *Cron) Overdue(last, since, now time.Time) bool {
	from := last
	if from.IsZero() {
		from = since
	}
	n1 := c.Next(from)
	if n1.IsZero() {
		return false
	}
	n2 := c.Next(n1)
	return !n2.IsZero() && now.After(n2)
}
