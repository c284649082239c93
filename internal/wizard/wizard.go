// Package wizard is `difyctl setup`: a terminal walk from nothing to a
// written .env (bubbletea), and the plain-prompt variant for screen readers.
// Every answer maps to the same variables `difyctl init` and `env set` write,
// through envgen, and every answer is checked with envgen's own per-value
// checks, so the wizard adds no second way to make or judge a .env.
package wizard

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/profiles"
	"github.com/difyctl/difyctl/templates"
)

// Step of the flow.
type Step int

// Steps, in order.
const (
	StepWelcome Step = iota
	StepRelease
	StepDatabase
	StepVector
	StepAccess
	StepSecrets
	StepReview
	StepDone
)

var stepTitles = []string{"Welcome", "Dify release", "Metadata database", "Vector store", "Access", "Secrets", "Review", "Written"}

// Answers is what the operator chose in one mode (editing the existing .env,
// or starting fresh). Each mode has its own: looking at one never changes the
// other.
type Answers struct {
	Release   string // the catalogue release (templates/<version>) the .env is for
	Database  string
	Vector    string
	PublicURL string // empty: Dify's defaults
	HTTPPort  string
	HTTPSPort string
	TLS       bool
	Replaced  map[string]string // secrets the operator replaced on the Secrets screen, by variable

	tlsTouched bool // the operator set TLS themselves: the URL's scheme no longer decides it
}

// Env is what the wizard needs from the project.
type Env struct {
	Path      string                // the .env to write
	Existing  *envgen.Doc           // the current .env, or nil
	Generated *envgen.Doc           // a fresh .env for the default profiles (others are generated on demand)
	PortInUse func(int) bool        // checks a host port
	DataIn    func(dir string) bool // whether the project directory holds data in dir (relative, e.g. volumes/db/data)
	Now       func() time.Time      // the clock (nil: time.Now)
	Color     bool                  // colour, in the profile the environment names (never asked of the terminal)

	// Release is the catalogue release preselected for a new deployment
	// ("": the newest). Generated is used for the release it was made for
	// (its template header).
	Release string
	// Deployed is the release the project already deploys ("": none, a new
	// deployment whose release the operator chooses). The wizard never
	// changes it: that is `difyctl upgrade`'s job.
	Deployed string
	// DeployedFrom says how Deployed is known, for the screen ("recorded in
	// .difyctl-release").
	DeployedFrom string
}

// Result is how the wizard ended.
type Result struct {
	Written     bool
	Release     string // the Dify release the written .env is for
	Backup      string // the copy of the previous .env, when there was one
	StartNow    bool
	Interrupted bool // ctrl+c
}

// Model is the bubbletea model.
type Model struct {
	env    Env
	step   Step
	fresh  bool
	modes  [2]Answers // [0] edit (or the only one without an .env), [1] start fresh
	inits  [2]Answers // each mode's answers as it started, to write only what changed
	gen    map[string]*envgen.Doc
	drafts map[string]*envgen.Doc

	cursor   int // list position on list steps, field on Access, row on Secrets
	listTop  int // first list line shown when the list scrolls
	welcome  int // Welcome's choice
	input    *field
	errMsg   string
	revealed map[string]bool
	width    int
	height   int
	styles   styles
	relNames []string               // the catalogue, oldest first (as `difyctl releases` lists it)
	names    map[string][2][]string // per release: the database and vector profiles its compose file declares

	// Review.
	doc           *envgen.Doc
	changes       []Change
	findings      []envgen.Finding
	risks         []string // what the changed secrets break in the data that exists
	secretChanges []string
	confirm       bool // asking again before writing over data
	scroll        int

	res  Result
	quit bool
}

type styles struct {
	title, selected, dim, err, warn, help lipgloss.Style
}

// ColorProfile is the colour profile the environment names: COLORTERM
// truecolor/24bit, a TERM with 256color, else the 8 ANSI colours. It is
// read from the environment, not asked of the terminal, which a terminal
// that does not answer would make wait.
func ColorProfile(getenv func(string) string) termenv.Profile {
	switch ct := strings.ToLower(getenv("COLORTERM")); {
	case ct == "truecolor" || ct == "24bit":
		return termenv.TrueColor
	case strings.Contains(getenv("TERM"), "256color"):
		return termenv.ANSI256
	case getenv("TERM") == "" || getenv("TERM") == "dumb":
		return termenv.Ascii
	}
	return termenv.ANSI
}

func newStyles(color bool) styles {
	p := termenv.Ascii
	if color {
		p = ColorProfile(os.Getenv)
	}
	r := lipgloss.NewRenderer(io.Discard)
	// Set, never detected: detection would query the terminal.
	r.SetColorProfile(p)
	r.SetHasDarkBackground(true)
	return styles{
		title:    r.NewStyle().Bold(true),
		selected: r.NewStyle().Bold(true).Foreground(lipgloss.Color("6")),
		dim:      r.NewStyle().Foreground(lipgloss.Color("8")),
		err:      r.NewStyle().Foreground(lipgloss.Color("1")).Bold(true),
		warn:     r.NewStyle().Foreground(lipgloss.Color("3")).Bold(true),
		help:     r.NewStyle().Foreground(lipgloss.Color("8")),
	}
}

// field is a one-line text input.
type field struct {
	label, name, value string
	secret             bool
}

// New returns the model for env.
func New(env Env) *Model {
	m := &Model{env: env, revealed: map[string]bool{}, styles: newStyles(env.Color), width: 80, height: 24,
		gen: map[string]*envgen.Doc{}, drafts: map[string]*envgen.Doc{},
		relNames: templates.Versions(), names: map[string][2][]string{}}
	if env.Existing != nil && env.Deployed == "" {
		// A project with a .env deploys a release: without a record, the
		// newest (what up loads it with).
		m.env.Deployed, m.env.DeployedFrom = templates.Latest().Version, "no release record: the newest, as up loads it"
	}
	rel := templates.Latest().Version
	for _, v := range []string{env.Release, m.env.Deployed} {
		if v == "" {
			continue
		}
		if r, err := templates.Lookup(v); err != nil {
			m.errMsg = err.Error() // setup checks it first; never silently another release
		} else {
			rel = r.Version
		}
	}
	def := Answers{Release: rel, Database: profiles.DefaultDatabase, Vector: profiles.DefaultVector, HTTPPort: "80", HTTPSPort: "443"}
	m.inits = [2]Answers{def, def}
	if env.Existing != nil {
		e := def
		cur := env.Existing.Map()
		if sel, err := profiles.FromEnv(cur); err == nil {
			e.Database, e.Vector = sel.Database, sel.Vector
		}
		e.PublicURL = cur["CONSOLE_WEB_URL"]
		if v := cur["EXPOSE_NGINX_PORT"]; v != "" {
			e.HTTPPort = v
		}
		if v := cur["EXPOSE_NGINX_SSL_PORT"]; v != "" {
			e.HTTPSPort = v
		}
		e.TLS = strings.EqualFold(cur["NGINX_HTTPS_ENABLED"], "true")
		m.inits[0] = e
	}
	for i := range m.modes {
		m.modes[i] = m.inits[i]
		m.modes[i].Replaced = map[string]string{}
	}
	return m
}

func (m *Model) now() time.Time {
	if m.env.Now != nil {
		return m.env.Now()
	}
	return time.Now()
}

func (m *Model) mode() int {
	if m.fresh {
		return 1
	}
	return 0
}

// a is the answers of the mode in use.
func (m *Model) a() *Answers { return &m.modes[m.mode()] }

func (m *Model) initial() Answers { return m.inits[m.mode()] }

// Answers returns the answers of the mode in use.
func (m *Model) Answers() Answers { return *m.a() }

// Fresh reports whether the operator chose to start fresh.
func (m *Model) Fresh() bool { return m.fresh }

// Result reports how the wizard ended.
func (m *Model) Result() Result { return m.res }

// Quit reports whether the user quit (q or ctrl+c) before writing.
func (m *Model) Quit() bool { return m.quit }

// Written reports whether the .env was written.
func (m *Model) Written() bool { return m.res.Written }

// Step returns the current step.
func (m *Model) Step() Step { return m.step }

// Init implements tea.Model.
func (m *Model) Init() tea.Cmd { return nil }

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		return m, nil
	case tea.KeyMsg:
		// A terminal may deliver several typed keys at once ("jj").
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && m.input == nil && !msg.Paste {
			var cmd tea.Cmd
			for _, r := range msg.Runes {
				_, cmd = m.key(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
				if cmd != nil {
					return m, cmd
				}
			}
			return m, nil
		}
		return m.key(msg)
	}
	return m, nil
}

func (m *Model) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	s := k.String()
	if s == "ctrl+c" {
		m.res.Interrupted = true
		m.quit = !m.res.Written
		return m, tea.Quit
	}
	if m.input != nil {
		return m.editKey(k)
	}
	if m.step == StepDone {
		switch s {
		case "y":
			m.res.StartNow = true
			return m, tea.Quit
		case "n", "enter", "q", "esc":
			return m, tea.Quit
		}
		return m, nil
	}
	if m.confirm {
		switch s {
		case "y":
			return m.doWrite()
		case "n", "esc":
			m.confirm = false
		}
		return m, nil
	}
	switch s {
	case "q":
		m.quit = true
		return m, tea.Quit
	case "esc", "shift+tab":
		m.back()
		return m, nil
	}
	m.errMsg = ""
	switch m.step {
	case StepWelcome:
		switch s {
		case "up", "k", "down", "j":
			if m.env.Existing != nil {
				m.welcome = 1 - m.welcome
			}
		case "enter", "tab":
			m.fresh = m.env.Existing != nil && m.welcome == 1
			m.next()
		}
	case StepRelease:
		switch s {
		case "up", "k", "down", "j":
			if m.releaseFixed() {
				m.errMsg = "the release is fixed here: difyctl upgrade changes it"
				return m, nil
			}
			n := len(m.relNames)
			if s == "up" || s == "k" {
				m.cursor = (m.cursor + n - 1) % n
			} else {
				m.cursor = (m.cursor + 1) % n
			}
		case "enter", "tab":
			if !m.releaseFixed() {
				m.a().Release = m.relNames[m.cursor]
			}
			m.next()
		}
	case StepDatabase, StepVector:
		names := m.listNames()
		switch s {
		case "up", "k":
			m.cursor = (m.cursor + len(names) - 1) % len(names)
		case "down", "j":
			m.cursor = (m.cursor + 1) % len(names)
		case "enter", "tab":
			if m.step == StepDatabase {
				m.a().Database = names[m.cursor]
			} else {
				m.a().Vector = names[m.cursor]
			}
			m.next()
		}
	case StepAccess:
		switch s {
		case "up", "k":
			m.cursor = (m.cursor + 3) % 4
		case "down", "j":
			m.cursor = (m.cursor + 1) % 4
		case " ", "enter", "e":
			if m.cursor == 3 {
				if s != "e" {
					m.a().TLS, m.a().tlsTouched = !m.a().TLS, true
				}
				return m, nil
			}
			m.editAccess()
		case "tab":
			m.nextFromAccess()
		}
	case StepSecrets:
		names := m.secrets()
		if len(names) == 0 {
			if s == "enter" || s == "tab" {
				m.next()
			}
			return m, nil
		}
		m.cursor = min(m.cursor, len(names)-1)
		switch s {
		case "up", "k":
			m.cursor = (m.cursor + len(names) - 1) % len(names)
		case "down", "j":
			m.cursor = (m.cursor + 1) % len(names)
		case "r":
			n := names[m.cursor]
			m.revealed[n] = !m.revealed[n]
		case "e":
			n := names[m.cursor]
			m.input = &field{label: "New " + n, name: n, secret: true}
		case "u":
			delete(m.a().Replaced, names[m.cursor])
		case "enter", "tab":
			m.next()
		}
	case StepReview:
		switch s {
		case "up", "k":
			m.scroll--
		case "down", "j":
			m.scroll++
		case "pgup", "b":
			m.scroll -= max(1, m.bodyRows()-1)
		case "pgdown", " ", "f":
			m.scroll += max(1, m.bodyRows()-1)
		case "home", "g":
			m.scroll = 0
		case "end", "G":
			m.scroll = 1 << 30
		case "enter", "tab":
			return m.writeAsked()
		}
	}
	return m, nil
}

func (m *Model) listNames() []string {
	if m.step == StepVector {
		return m.vecNames()
	}
	return m.dbNames()
}

func (m *Model) editKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch k.Type {
	case tea.KeyEsc:
		m.input, m.errMsg = nil, ""
	case tea.KeyEnter, tea.KeyTab:
		if err := m.commitInput(); err != nil {
			m.errMsg = err.Error()
			if m.input.secret {
				// A masked value cannot be corrected by eye: start over.
				m.input.value = ""
			}
			return m, nil
		}
		m.input, m.errMsg = nil, ""
	case tea.KeyBackspace:
		m.errMsg = ""
		if r := []rune(m.input.value); len(r) > 0 {
			m.input.value = string(r[:len(r)-1])
		}
	case tea.KeyCtrlU:
		m.errMsg = ""
		m.input.value = ""
	case tea.KeyRunes, tea.KeySpace:
		m.errMsg = ""
		m.input.value += string(k.Runes)
	}
	return m, nil
}

var accessLabels = []string{"Public URL (empty: Dify's defaults)", "HTTP port", "HTTPS port", "nginx terminates TLS"}

func (m *Model) editAccess() {
	a := m.a()
	vals := []string{a.PublicURL, a.HTTPPort, a.HTTPSPort}
	if m.cursor < 3 {
		m.input = &field{label: accessLabels[m.cursor], value: vals[m.cursor]}
	}
}

func (m *Model) commitInput() error {
	v := m.input.value
	a := m.a()
	if m.step == StepSecrets {
		if err := envgen.CheckSecret(v); err != nil {
			return err
		}
		d, err := m.draft()
		if err != nil {
			return err
		}
		if old, _ := d.Get(m.input.name); old == v {
			delete(a.Replaced, m.input.name)
		} else {
			a.Replaced[m.input.name] = v
		}
		return nil
	}
	switch m.cursor {
	case 0:
		return m.setURL(strings.TrimSpace(v))
	case 1, 2:
		if err := m.checkPort(v, m.cursor); err != nil {
			return err
		}
		if m.cursor == 1 {
			a.HTTPPort = v
		} else {
			a.HTTPSPort = v
		}
	}
	return nil
}

// setURL takes a public URL answer. Unless the operator set TLS themselves,
// a change of scheme decides it: https on, http off, none as the file had it.
func (m *Model) setURL(v string) error {
	a := m.a()
	if v != "" {
		if err := envgen.CheckOriginURL(v); err != nil {
			return err
		}
		v = strings.TrimSuffix(v, "/")
	}
	if !a.tlsTouched && scheme(v) != scheme(a.PublicURL) {
		switch scheme(v) {
		case "https":
			a.TLS = true
		case "http":
			a.TLS = false
		default:
			a.TLS = m.initial().TLS
		}
	}
	a.PublicURL = v
	return nil
}

func scheme(u string) string {
	s, _, _ := strings.Cut(u, "://")
	if s == u {
		return ""
	}
	return s
}

// checkPort checks an answer for the HTTP (which 1) or HTTPS (2) port:
// envgen's rule, distinct from the other published ports, free on this host
// unless the deployment already publishes it.
func (m *Model) checkPort(v string, which int) error {
	if err := envgen.CheckPort(v); err != nil {
		return err
	}
	probe := map[string]string{}
	if m.env.Existing != nil && !m.fresh {
		probe = m.env.Existing.Map()
	}
	a := m.a()
	probe["EXPOSE_NGINX_PORT"], probe["EXPOSE_NGINX_SSL_PORT"] = a.HTTPPort, a.HTTPSPort
	self := envgen.PublishedPorts[which-1]
	probe[self] = v
	if dup, first, _ := envgen.DuplicatePort(probe, m.schema()); dup != "" {
		other := first
		if other == self {
			other = dup
		}
		return fmt.Errorf("port %s is already published as %s; choose another", v, other)
	}
	if m.portIsOurs(v) {
		return nil
	}
	if n := atoi(v); m.env.PortInUse != nil && m.env.PortInUse(n) {
		return fmt.Errorf("port %d is in use on this host; choose another", n)
	}
	return nil
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func (m *Model) nextFromAccess() {
	a := m.a()
	for i, p := range []string{a.HTTPPort, a.HTTPSPort} {
		if err := m.checkPort(p, i+1); err != nil {
			m.errMsg = accessLabels[i+1] + ": " + err.Error()
			m.cursor = i + 1
			return
		}
	}
	m.next()
}

// portIsOurs: the port the existing .env already publishes (our own nginx
// may hold it, also when starting fresh over it).
func (m *Model) portIsOurs(p string) bool {
	if m.env.Existing == nil {
		return false
	}
	cur := m.env.Existing.Map()
	return p == cur["EXPOSE_NGINX_PORT"] || p == cur["EXPOSE_NGINX_SSL_PORT"]
}

// secrets are the names on the Secrets screen.
func (m *Model) secrets() []string {
	d, err := m.draft()
	if err != nil {
		return nil
	}
	return secretNames(d, m.schema())
}

// secretValue is what will be written for the secret name.
func (m *Model) secretValue(name string) string {
	if v, ok := m.a().Replaced[name]; ok {
		return v
	}
	d, err := m.draft()
	if err != nil {
		return ""
	}
	v, _ := d.Get(name)
	return v
}

func (m *Model) next() {
	m.errMsg = ""
	m.step++
	m.enter()
}

func (m *Model) back() {
	if m.step == StepWelcome || m.step == StepDone {
		return
	}
	m.errMsg = ""
	m.step--
	m.enter()
}

func (m *Model) enter() {
	m.cursor, m.scroll, m.confirm, m.listTop = 0, 0, false, 0
	switch m.step {
	case StepRelease:
		m.cursor = index(m.relNames, m.a().Release)
	case StepDatabase:
		m.cursor = index(m.dbNames(), m.a().Database)
	case StepVector:
		m.cursor = index(m.vecNames(), m.a().Vector)
	case StepSecrets:
		if _, err := m.draft(); err != nil {
			m.errMsg = err.Error()
		}
	case StepReview:
		m.prepareReview()
	}
}

func (m *Model) prepareReview() {
	m.doc, m.changes, m.findings, m.risks = nil, nil, nil, nil
	d, err := m.build()
	if err != nil {
		m.errMsg = err.Error()
		return
	}
	m.doc = d
	var before *envgen.Doc
	if !m.fresh {
		before = m.env.Existing
	}
	m.changes = Diff(before, d, m.schema())
	m.findings = envgen.Validate(d, m.schema())
	m.secretChanges = nil
	if m.env.Existing == nil {
		return
	}
	old, now := m.env.Existing.Map(), d.Map()
	for _, name := range secretNames(d, m.schema()) {
		if o := old[name]; o == "" || o == now[name] {
			continue
		}
		m.secretChanges = append(m.secretChanges, name)
		if dir, breaks := dataEffects(name, now); dir != "" && m.env.DataIn != nil && m.env.DataIn(dir) {
			m.risks = append(m.risks, fmt.Sprintf("%s changes, and %s holds data: %s.", name, dir, breaks))
		}
	}
}

// changedSecrets are the secrets the existing .env holds whose value the
// write changes (in either mode).
func (m *Model) changedSecrets() []string { return m.secretChanges }

func (m *Model) errorCount() int {
	n := 0
	for _, f := range m.findings {
		if f.Severity == envgen.Error {
			n++
		}
	}
	return n
}

func (m *Model) writeAsked() (tea.Model, tea.Cmd) {
	if m.doc == nil {
		return m, nil
	}
	if n := m.errorCount(); n > 0 {
		m.errMsg = fmt.Sprintf("not written: env validate finds %d error(s), listed above; esc goes back to fix them", n)
		return m, nil
	}
	if len(m.risks) > 0 {
		m.confirm = true
		return m, nil
	}
	return m.doWrite()
}

func (m *Model) doWrite() (tea.Model, tea.Cmd) {
	m.confirm = false
	if err := m.write(); err != nil {
		m.errMsg = err.Error()
		return m, nil
	}
	m.step = StepDone
	return m, nil
}

// write keeps a copy of an existing .env and writes the reviewed one
// atomically (0600).
func (m *Model) write() error {
	if fs := envgen.Validate(m.doc, m.schema()); envgen.HasErrors(fs, false) {
		return fmt.Errorf("not written: env validate finds errors")
	}
	undo, err := m.writeRelease()
	if err != nil {
		return err
	}
	if _, err := os.Stat(m.env.Path); err == nil {
		b, err := envgen.Backup(m.env.Path, m.now())
		if err != nil {
			undo()
			return fmt.Errorf("not written: keeping a copy of %s: %w", m.env.Path, err)
		}
		m.res.Backup = b
	}
	if err := envgen.WriteFile(m.env.Path, m.doc); err != nil {
		undo()
		return fmt.Errorf("not written: %w", err)
	}
	m.res.Written, m.res.Release = true, m.rel().Version
	return nil
}

func index(ss []string, s string) int {
	for i, x := range ss {
		if x == s {
			return i
		}
	}
	return 0
}
