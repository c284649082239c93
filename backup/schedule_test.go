package backup

import (
	"os"
	"strings"
	"testing"
)

func TestScheduleRootCronD(t *testing.T) {
	CronDir = t.TempDir()
	s := Schedule{Cron: "0 3 * * *", Binary: "/usr/local/bin/difyctl", ProjectDir: "/srv/dify prod", Project: "dify", LogFile: "/srv/dify prod/backups/backup.log"}
	where, err := s.Install(true)
	if err != nil || where != CronDFile("dify") {
		t.Fatalf("%s %v", where, err)
	}
	b, _ := os.ReadFile(where)
	want := "0 3 * * * root /usr/local/bin/difyctl --project-dir '/srv/dify prod' -p dify backup redis --quiet >>'/srv/dify prod/backups/backup.log' 2>&1\n"
	if !strings.HasSuffix(string(b), want) {
		t.Fatalf("entry:\n%s\nwant suffix:\n%s", b, want)
	}
	if got, _ := ShowSchedule("dify", true); got != string(b) {
		t.Fatalf("show: %q", got)
	}
	if ok, err := RemoveSchedule("dify", true); !ok || err != nil {
		t.Fatalf("remove: %v %v", ok, err)
	}
	if ok, _ := RemoveSchedule("dify", true); ok {
		t.Fatal("removed twice")
	}
	if _, err := (Schedule{Cron: "61 * * * *"}).Install(true); err == nil {
		t.Fatal("bad cron accepted")
	}
}

func TestWithoutEntry(t *testing.T) {
	tab := "MAILTO=x\n" + marker("a") + "\n0 3 * * * job-a\n" + marker("b") + "\n0 4 * * * job-b\n"
	got := strings.Join(withoutEntry(tab, "a"), "\n")
	if got != "MAILTO=x\n"+marker("b")+"\n0 4 * * * job-b" {
		t.Fatalf("got %q", got)
	}
}
