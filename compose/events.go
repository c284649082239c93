package compose

import "time"

// Event is one state change of a service during up/down, for the progress
// view: plain lines, JSON objects or the live terminal view.
type Event struct {
	Time    time.Time `json:"time"`
	Service string    `json:"service"`
	State   string    `json:"state"` // see the State* constants
	Detail  string    `json:"detail,omitempty"`
}

// States a service goes through.
const (
	StateWaiting     = "waiting"     // for a dependency (Detail names it)
	StatePulling     = "pulling"     // its image
	StatePulled      = "pulled"      // its image, by difyctl pull
	StateCreating    = "creating"    // its container
	StateCreated     = "created"     //
	StateStarting    = "starting"    //
	StateStarted     = "started"     // running; health not yet known
	StateHealth      = "health"      // a healthcheck probe ran; Detail says how many failed of how many allowed
	StateProbe       = "probe"       // difyctl ran the healthcheck itself (Detail: which probe, its result), or starts doing so
	StateRestarted   = "restarted"   // the engine restarted it after it exited (Detail: how often, the exit code)
	StateHealthy     = "healthy"     // running and healthy (or running, without a healthcheck)
	StateCompleted   = "completed"   // a one-shot job that exited 0
	StateUnchanged   = "unchanged"   // already running with this configuration
	StateRecreating  = "recreating"  // diverged: a replacement takes its place (Detail says why)
	StateRestarting  = "restarting"  // a dependency with restart: true was recreated
	StateRolledBack  = "rolled back" // the replacement failed to start; the old container runs again
	StateFailed      = "failed"      // exited, unhealthy, or could not be created/started
	StateSkipped     = "skipped"     // not started: a dependency failed, or not required
	StateInterrupted = "interrupted" // Ctrl-C: Detail says what it was doing and the container's state
	StateStopping    = "stopping"    // (up, start: Detail says a stop asked earlier is still being carried out)
	StateStopped     = "stopped"
	StateRemoved     = "removed"
	// StateDone and StateError end a --progress json stream: the command's
	// outcome (Detail: its summary or its error).
	StateDone  = "done"
	StateError = "error"
)

// Reporter receives events; it must be safe for concurrent use.
type Reporter func(Event)

func (r Reporter) emit(svc, state, detail string) {
	if r != nil {
		r(Event{Time: time.Now(), Service: svc, State: state, Detail: detail})
	}
}
