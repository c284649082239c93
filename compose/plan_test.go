package compose

import (
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

const planFile = `
services:
  init:
    image: app:1
  db:
    image: app:1
    restart: always
  api:
    image: app:1
    restart: always
    depends_on:
      init: {condition: service_completed_successfully}
      db: {condition: service_healthy}
  web:
    image: app:1
    depends_on: [api]
  vec:
    image: app:1
    profiles: [vec]
`

func noLabels(types.ServiceConfig, string) map[string]string { return nil }

// observed is the container a plan input says exists for svc, current
// unless changed.
func observed(t *testing.T, p *types.Project, svc, state string, exit int, change func(*Observed)) Observed {
	t.Helper()
	hash := "gone"
	if s, ok := p.Services[svc]; ok {
		hash, _ = ServiceHash(s)
	}
	o := Observed{ProjectContainer: ProjectContainer{ID: strings.Repeat(svc[:1], 64), Name: "p-" + svc + "-1", Service: svc, State: state, ConfigHash: hash},
		ImageID: "sha256:1", ExitCode: exit, Networks: map[string][]string{"p_default": {svc}}}
	if change != nil {
		change(&o)
	}
	return o
}

// The planner is pure: the same input gives the same plan, compared as
// text, as compose's plan_test does.
func TestMakePlan(t *testing.T) {
	p := project(t, planFile)
	ids := map[string]string{"app:1": "sha256:1"}
	cases := []struct {
		name     string
		existing func() []Observed
		policy   RecreatePolicy
		orphans  bool
		want     string
	}{
		{"fresh", func() []Observed { return nil }, RecreateDiverged, false,
			"level 0  db                     create\nlevel 0  init                   create\nlevel 1  api                    create\nlevel 2  web                    create\n"},
		{"converged", func() []Observed {
			return []Observed{observed(t, p, "init", "exited", 0, nil), observed(t, p, "db", "running", 0, nil),
				observed(t, p, "api", "running", 0, nil), observed(t, p, "web", "running", 0, nil)}
		}, RecreateDiverged, false,
			"level 0  db                     unchanged\nlevel 0  init                   done (completed earlier)\nlevel 1  api                    unchanged\nlevel 2  web                    unchanged\n"},
		{"diverged", func() []Observed {
			return []Observed{
				observed(t, p, "init", "exited", 1, nil), // failed last time: run again
				observed(t, p, "db", "running", 0, func(o *Observed) { o.ImageID = "sha256:0" }),
				observed(t, p, "api", "running", 0, func(o *Observed) { o.ConfigHash = "old"; delete(o.Networks, "p_default") }),
				observed(t, p, "web", "exited", 0, nil), // stopped by hand, no job: started
				observed(t, p, "old", "running", 0, nil),
				observed(t, p, "vec", "running", 0, nil),
			}
		}, RecreateDiverged, true,
			"level 0  db                     recreate (image app:1 now is 1, the container runs 0)\nlevel 0  init                   start (stopped)\n" +
				"level 1  api                    recreate (configuration changed; not connected to network p_default)\nlevel 2  web                    start (stopped)\n" +
				"orphan   old                    remove (not in the project's files)\norphan   vec                    remove (its profile is not active)\n"},
		{"no-recreate", func() []Observed {
			return []Observed{observed(t, p, "db", "running", 0, func(o *Observed) { o.ConfigHash = "old" })}
		}, RecreateNever, false,
			"level 0  db                     unchanged\nlevel 0  init                   create\nlevel 1  api                    create\nlevel 2  web                    create\n"},
		{"force", func() []Observed { return []Observed{observed(t, p, "db", "exited", 0, nil)} }, RecreateForce, false,
			"level 0  db                     recreate (--force-recreate)\nlevel 0  init                   create\nlevel 1  api                    create\nlevel 2  web                    create\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan, err := MakePlan(PlanInput{Project: p, Existing: c.existing(), ImageIDs: ids, Recreate: c.policy, RemoveOrphans: c.orphans, Labels: noLabels})
			if err != nil {
				t.Fatal(err)
			}
			if got := plan.String(); got != c.want {
				t.Fatalf("plan:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

func TestMakePlanWarnings(t *testing.T) {
	p := project(t, planFile)
	existing := []Observed{
		observed(t, p, "db", "running", 0, nil),
		observed(t, p, "db", "exited", 0, func(o *Observed) { o.ID, o.Name = strings.Repeat("e", 64), "p-db-1_replaced_dddd" }),
		observed(t, p, "vec", "running", 0, nil),
		observed(t, p, "gone", "exited", 0, nil),
	}
	plan, err := MakePlan(PlanInput{Project: p, Services: []string{"db"}, Existing: existing, Labels: noLabels})
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(plan.Warnings, "\n")
	for _, want := range []string{"not in the project's files (gone)", "profile is not active (vec)", "container p-db-1_replaced_dddd is a second container of service db"} {
		if !strings.Contains(w, want) {
			t.Fatalf("warnings lack %q:\n%s", want, w)
		}
	}
	if len(plan.Items) != 1 || plan.Items[0].Action != ActionKeep {
		t.Fatalf("the canonical container was not chosen: %+v", plan.Items)
	}
	if _, err := MakePlan(PlanInput{Project: p, Services: []string{"nope"}, Labels: noLabels}); err == nil {
		t.Fatal("an unknown service was planned")
	}
}

func TestInheritVolumes(t *testing.T) {
	anon := func(c byte) string { return strings.Repeat(string(c), 64) }
	spec := &Spec{Host: &container.HostConfig{Mounts: []mount.Mount{
		{Type: mount.TypeVolume, Target: "/declared"},                 // volumes: [/declared]
		{Type: mount.TypeVolume, Source: "p_named", Target: "/named"}, // a named volume stays
		{Type: mount.TypeBind, Source: "/host", Target: "/bound"},
	}}}
	inheritVolumes(spec, []container.MountPoint{
		{Type: mount.TypeVolume, Name: anon('a'), Destination: "/declared"},
		{Type: mount.TypeVolume, Name: anon('b'), Destination: "/image-volume"},
		{Type: mount.TypeVolume, Name: anon('c'), Destination: "/named"},
		{Type: mount.TypeVolume, Name: "p_other", Destination: "/x"},
		{Type: mount.TypeBind, Source: "/host", Destination: "/bound"},
	})
	got := map[string]string{}
	for _, m := range spec.Host.Mounts {
		got[m.Target] = m.Source
	}
	if got["/declared"] != anon('a') || got["/image-volume"] != anon('b') || got["/named"] != "p_named" || got["/bound"] != "/host" || len(got) != 4 {
		t.Fatalf("mounts %v", got)
	}
	if isAnonymous("p_data") || !isAnonymous(anon('f')) || isAnonymous(strings.Repeat("g", 64)) {
		t.Fatal("isAnonymous")
	}
}

func TestParsePullPolicy(t *testing.T) {
	for in, want := range map[string]PullPolicy{"": PullMissing, "if_not_present": PullMissing, "always": PullAlways, "never": PullNever} {
		if got, err := ParsePullPolicy(in); err != nil || got != want {
			t.Fatalf("%q: %v %v", in, got, err)
		}
	}
	if _, err := ParsePullPolicy("daily"); err == nil {
		t.Fatal("daily accepted")
	}
}
