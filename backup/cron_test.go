package backup

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST cases below need zones on any host
)

func TestCronNext(t *testing.T) {
	base := time.Date(2026, 11, 22, 3, 0, 0, 0, time.Local) // a Sunday
	cases := []struct{ expr, want string }{
		{"0 3 * * *", "2026-11-23T03:00"},
		{"*/15 * * * *", "2026-11-22T03:15"},
		{"30 2 * * 1-5", "2026-11-23T02:30"},
		{"0 0 1 * *", "2026-12-01T00:00"},
		{"@daily", "2026-11-23T00:00"},
		{"@weekly", "2026-11-29T00:00"},
		{"0 4 * * SUN", "2026-11-22T04:00"},
		{"0 4 * * MON-FRI", "2026-11-23T04:00"},
		{"0 4 1 JAN *", "2027-01-01T04:00"},
		{"0 12 15 * 1", "2026-11-23T12:00"}, // both day fields restricted: either matches (cron(8))
		// A day field starting with * counts as unrestricted, as cron(8) reads it: */2 AND Wednesday
		// (robfig alone would OR them and say Monday the 23rd).
		{"0 12 */2 * 3", "2026-11-25T12:00"},
		{"5,10 3 * * *", "2026-11-22T03:05"},
		{"0 0 29 2 *", "2028-02-29T00:00"},
	}
	for _, c := range cases {
		cr, err := ParseCron(c.expr)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		if got := cr.Next(base).Format("2006-01-02T15:04"); got != c.want {
			t.Errorf("%s: next %s, want %s", c.expr, got, c.want)
		}
	}
	for _, bad := range []string{"", "* * * *", "60 * * * *", "* 24 * * *", "*/0 * * * *", "a * * * *", "5-1 * * * *", "@every 1h", "@reboot", "0 4 * * 7"} {
		if _, err := ParseCron(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseCron("0 4 * * 7"); err == nil || !strings.Contains(err.Error(), "Sunday is 0") {
		t.Errorf("day 7: %v", err)
	}
}

func TestCronNeverMatchingRefused(t *testing.T) {
	for _, e := range []string{"0 0 31 2 *", "0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6,9,11 *"} {
		_, err := ParseCron(e)
		if err == nil || !strings.Contains(err.Error(), "never matches") {
			t.Errorf("%s: %v", e, err)
		}
		if _, err := ParseCronForCron(e); err == nil {
			t.Errorf("%s accepted for cron", e)
		}
	}
}

func TestCronTZ(t *testing.T) {
	c, err := ParseCron("CRON_TZ=Asia/Kolkata 0 3 * * *")
	if err != nil {
		t.Fatal(err)
	}
	next := c.Next(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)) // 05:30 in Kolkata
	if got := next.Format(time.RFC3339); got != "2026-11-23T03:00:00+05:30" {
		t.Fatalf("next %s", got)
	}
	if c.Location().String() != "Asia/Kolkata" {
		t.Fatalf("zone %s", c.Location())
	}
	if _, err := ParseCronForCron("CRON_TZ=Asia/Kolkata 0 3 * * *"); err == nil || !strings.Contains(err.Error(), "does not read CRON_TZ") {
		t.Fatalf("CRON_TZ for cron(8): %v", err)
	}
}

// The daemon's DST behaviour is robfig/cron's, as the README and `backup
// daemon --help` say: skipped in the spring gap, twice in the fall overlap.
func TestCronDSTAsDocumented(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	spring, _ := ParseCron("CRON_TZ=America/New_York 30 2 * * *")
	// 2026-03-08 02:00 EST jumps to 03:00 EDT: 02:30 does not exist that day.
	got := spring.Next(time.Date(2026, 3, 7, 12, 0, 0, 0, ny))
	if got.Format(time.RFC3339) != "2026-03-09T02:30:00-04:00" {
		t.Errorf("spring: %s", got.Format(time.RFC3339))
	}
	fall, _ := ParseCron("CRON_TZ=America/New_York 30 1 * * *")
	// 2026-11-01 02:00 EDT falls back to 01:00 EST: 01:30 happens twice.
	first := fall.Next(time.Date(2026, 10, 31, 12, 0, 0, 0, ny))
	second := fall.Next(first)
	third := fall.Next(second)
	if first.Format(time.RFC3339) != "2026-11-01T01:30:00-04:00" || second.Format(time.RFC3339) != "2026-11-01T01:30:00-05:00" || third.Format(time.RFC3339) != "2026-11-02T01:30:00-05:00" {
		t.Errorf("fall: %s %s %s", first.Format(time.RFC3339), second.Format(time.RFC3339), third.Format(time.RFC3339))
	}
}

func TestOverdue(t *testing.T) {
	c, _ := ParseCron("CRON_TZ=UTC 0 3 * * *")
	last := time.Date(2026, 11, 20, 3, 0, 5, 0, time.UTC)
	if c.Overdue(last, time.Time{}, time.Date(2026, 11, 22, 2, 59, 0, 0, time.UTC)) {
		t.Error("one missed run is not two")
	}
	if !c.Overdue(last, time.Time{}, time.Date(2026, 11, 22, 3, 1, 0, 0, time.UTC)) {
		t.Error("two missed runs not noticed")
	}
}
