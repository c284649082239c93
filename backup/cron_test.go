package backup

import (
	"testing"
	"time"
)

func TestCronNext(t *testing.T) {
	base := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC) // a Sunday
	cases := []struct{ expr, want string }{
		{"0 3 * * *", "2026-11-23T03:00"},
		{"*/15 * * * *", "2026-11-22T03:15"},
		{"30 2 * * 1-5", "2026-11-23T02:30"},
		{"0 0 1 * *", "2026-12-01T00:00"},
		{"@daily", "2026-11-23T00:00"},
		{"0 4 * * 7", "2026-11-22T04:00"},
		{"0 12 15 * 1", "2026-11-23T12:00"}, // day of month OR day of week
		{"5,10 3 * * *", "2026-11-22T03:05"},
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
	for _, bad := range []string{"", "* * * *", "60 * * * *", "* 24 * * *", "*/0 * * * *", "a * * * *", "5-1 * * * *"} {
		if _, err := ParseCron(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
