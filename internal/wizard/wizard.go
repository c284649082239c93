// Package wizard is `difyctl setup`: a terminal walk from nothing to a
// written .env (bubbletea), and the plain-prompt variant for screen readers.
// Every answer maps to the same variables `difyctl init` and `env set` write,
// through envgen, so the wizard adds no second way to make a .env.
package wizard

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/profiles"
)

// Step of the flow.
type Step int

// Steps, in order.
const (
	StepWelcome Step = iota
	StepDatabase
	StepVector
	StepAccess
	StepSecrets
	StepReview
	StepDone
)

var stepTitles = []string{"Welcome", "Metadata database", "Vector store", "Access", "Secrets", "Review", "Written"}

// Answers is everything the wizard asks.
type Answers struct {
	Fresh     bool // replace an existing .env (a copy is kept) instead of editing it
	Database  string
	Vector    string
	PublicURL string // empty: leave Dify's URLs on their defaults
	HTTPPort  string
	HTTPSPort string
	TLS       bool
	Secrets   map[string]string // the secret values to write, by variable
	StartNow  bool
}

// Env is what the wizard needs from the project.
type Env struct {
	Path      string         // the .env to write
	Existing  *envgen.Doc    // the current .env, or nil
	Generated *envgen.Doc    // a fresh .env for the defaults, for its secrets
	PortInUse func(int) bool // checks a host port
	Validate  func(*envgen.Doc) []envgen.Finding
}

// Model is the bubbletea model.
type Model struct {
	env      Env
	step     Step
	a        Answers
	cursor   int // list position on list steps, field on Access, row on Secrets
	input    *field
	errMsg   string
	revealed map[string]bool
	width    int
	height   int
	quit     bool
	written  bool
	styles   styles
	secrets  []string // names of the secrets shown, in order
	dbNames  []string
	vecNames []string
	review   []string // review lines
	findings []envgen.Finding
}

type styles struct {
	title, selected, dim, err, help lipgloss.Style
}

func newStyles(color bool) styles {
	r := lipgloss.NewRenderer(nil)
	if !color {
		r.SetColorProfile(termenv.Ascii)
	}
	return styles{
		title:    r.NewStyle().Bold(true),
		selected: r.NewStyle().Bold(true).Foreground(lipgloss.Color("6")),
		dim:      r.NewStyle().Foreground(lipgloss.Color("8")),
		err:      r.NewStyle().Foreground(lipgloss.Color("1")),
		help:     r.NewStyle().Foreground(lipgloss.Color("8")),
	}
}

// field is a one-line text input.
type field struct {
	label, value string
	secret       bool
}

// New returns the model for env; color false renders no ANSI colour.
func New(env Env, color bool) *Model {
	m := &Model{env: env, revealed: map[string]bool{}, styles: newStyles(color), width: 80, height: 24,
		dbNames: profiles.Names(profiles.Database), vecNames: profiles.Names(profiles.Vector)}
	m.a = Answers{Database: profiles.DefaultDatabase, Vector: profiles.DefaultVector, HTTPPort: "80", HTTPSPort: "443", Secrets: map[string]string{}}
	base := env.Generated
	if env.Existing != nil {
		base = env.Existing
		cur := env.Existing.Map()
		if sel, err := profiles.FromEnv(cur); err == nil {
			m.a.Database, m.a.Vector = sel.Database, sel.Vector
		}
		m.a.PublicURL = cur["CONSOLE_WEB_URL"]
		if v := cur["EXPOSE_NGINX_PORT"]; v != "" {
			m.a.HTTPPort = v
		}
		if v := cur["EXPOSE_NGINX_SSL_PORT"]; v != "" {
			m.a.HTTPSPort = v
		}
		m.a.TLS = strings.EqualFold(cur["NGINX_HTTPS_ENABLED"], "true")
	}
	for _, v := range envgen.DefaultSchema().Vars {
		if !v.Generated() || len(v.Profiles) > 0 || v.Optional {
			continue
		}
		if val, ok := base.Get(v.Name); ok && val != "" {
			m.a.Secrets[v.Name] = val
			m.secrets = append(m.secrets, v.Name)
		}
	}
	// Tied secrets follow their primary; show only primaries.
	m.secrets = primaries(m.secrets)
	return m
}

func primaries(names []string) []string {
	secondary := map[string]bool{}
	for _, l := range envgen.Links {
		secondary[l.Secondary] = true
	}
	var out []string
	for _, n := range names {
		if !secondary[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Answers returns the answers so far.
func (m *Model) Answers() Answers { return m.a }

// Quit reports whether the user quit without writing.
func (m *Model) Quit() bool { return m.quit }

// Written reports whether the .env was written.
func (m *Model) Written() bool { return m.written }

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
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && m.input == nil {
			var cmd tea.Cmd
			for _, r := range msg.Runes {
				_, cmd = m.key(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
				if m.quit || cmd != nil {
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
		m.quit = true
		return m, tea.Quit
	}
	if m.input != nil {
		return m.editKey(k)
	}
	switch s {
	case "q":
		m.quit = m.step != StepDone || !m.written
		return m, tea.Quit
	case "esc", "shift+tab":
		m.back()
		return m, nil
	}
	switch m.step {
	case StepWelcome:
		switch s {
		case "up", "k", "down", "j":
			if m.env.Existing != nil {
				m.cursor = 1 - m.cursor
			}
		case "enter", "tab":
			m.a.Fresh = m.env.Existing != nil && m.cursor == 1
			if m.a.Fresh {
				m.resetToGenerated()
			}
			m.next()
		}
	case StepDatabase, StepVector:
		names := m.dbNames
		if m.step == StepVector {
			names = m.vecNames
		}
		switch s {
		case "up", "k":
			m.cursor = (m.cursor + len(names) - 1) % len(names)
		case "down", "j":
			m.cursor = (m.cursor + 1) % len(names)
		case "enter", "tab":
			if m.step == StepDatabase {
				m.a.Database = names[m.cursor]
			} else {
				m.a.Vector = names[m.cursor]
			}
			m.next()
		}
	case StepAccess:
		switch s {
		case "up", "k":
			m.cursor = (m.cursor + 3) % 4
		case "down", "j":
			m.cursor = (m.cursor + 1) % 4
		case " ", "space":
			if m.cursor == 3 {
				m.a.TLS = !m.a.TLS
			}
		case "e":
			m.editAccess()
		case "enter":
			if m.cursor < 3 {
				m.editAccess()
				return m, nil
			}
			m.nextFromAccess()
		case "tab":
			m.nextFromAccess()
		}
	case StepSecrets:
		switch s {
		case "up", "k":
			m.cursor = (m.cursor + len(m.secrets) - 1) % len(m.secrets)
		case "down", "j":
			m.cursor = (m.cursor + 1) % len(m.secrets)
		case "r":
			n := m.secrets[m.cursor]
			m.revealed[n] = !m.revealed[n]
		case "e":
			n := m.secrets[m.cursor]
			m.input = &field{label: n, value: "", secret: true}
		case "enter", "tab":
			m.next()
		}
	case StepReview:
		if s == "enter" || s == "tab" {
			if err := m.write(); err != nil {
				m.errMsg = err.Error()
				return m, nil
			}
			m.next()
		}
	case StepDone:
		switch s {
		case "enter", "y":
			m.a.StartNow = true
			return m, tea.Quit
		case "n":
			return m, tea.Quit
		}
	}
	return m, nil
}

func (m *Model) editKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch k.Type {
	case tea.KeyEsc:
		m.input, m.errMsg = nil, ""
	case tea.KeyEnter, tea.KeyTab:
		if err := m.commitInput(); err != nil {
			m.errMsg = err.Error()
			return m, nil
		}
		m.input, m.errMsg = nil, ""
	case tea.KeyBackspace:
		if r := []rune(m.input.value); len(r) > 0 {
			m.input.value = string(r[:len(r)-1])
		}
	case tea.KeyRunes, tea.KeySpace:
		m.input.value += string(k.Runes)
	}
	return m, nil
}

var accessLabels = []string{"Public URL (empty: Dify's defaults)", "HTTP port", "HTTPS port", "nginx terminates TLS"}

func (m *Model) editAccess() {
	vals := []string{m.a.PublicURL, m.a.HTTPPort, m.a.HTTPSPort}
	if m.cursor < 3 {
		m.input = &field{label: accessLabels[m.cursor], value: vals[m.cursor]}
	}
}

func (m *Model) commitInput() error {
	v := m.input.value
	if m.step == StepSecrets {
		if err := CheckSecret(v); err != nil {
			return err
		}
		m.a.Secrets[m.input.label] = v
		return nil
	}
	switch m.cursor {
	case 0:
		if v != "" {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("%q is not an http(s)://host URL", v)
			}
			if u.Scheme == "https" {
				m.a.TLS = true
			}
		}
		m.a.PublicURL = strings.TrimRight(v, "/")
	case 1, 2:
		if err := m.checkPort(v); err != nil {
			return err
		}
		if m.cursor == 1 {
			m.a.HTTPPort = v
		} else {
			m.a.HTTPSPort = v
		}
	}
	return nil
}

func (m *Model) checkPort(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q is not a port (1-65535)", v)
	}
	if m.env.PortInUse != nil && m.env.PortInUse(n) {
		return fmt.Errorf("port %d is in use on this host; choose another", n)
	}
	return nil
}

// CheckSecret refuses replacement secrets that are short or would break a
// URL or a shell (CELERY_BROKER_URL embeds the Redis password).
func CheckSecret(v string) error {
	if len(v) < 16 {
		return fmt.Errorf("at least 16 characters, please (%d given)", len(v))
	}
	if i := strings.IndexAny(v, " @:/?#%'\"\\$`"); i >= 0 {
		return fmt.Errorf("%q would break a URL or a shell; use letters, digits, - _ . + = ~", v[i:i+1])
	}
	return nil
}

func (m *Model) nextFromAccess() {
	for _, p := range []string{m.a.HTTPPort, m.a.HTTPSPort} {
		if err := m.checkPort(p); err != nil && !m.portIsOurs(p) {
			m.errMsg = err.Error()
			return
		}
	}
	m.next()
}

// portIsOurs: the port the existing .env already uses (our own nginx may hold it).
func (m *Model) portIsOurs(p string) bool {
	if m.env.Existing == nil || m.a.Fresh {
		return false
	}
	cur := m.env.Existing.Map()
	return p == cur["EXPOSE_NGINX_PORT"] || p == cur["EXPOSE_NGINX_SSL_PORT"]
}

func (m *Model) resetToGenerated() {
	for _, n := range m.secrets {
		if v, ok := m.env.Generated.Get(n); ok {
			m.a.Secrets[n] = v
		}
	}
}

func (m *Model) next() {
	m.errMsg = ""
	m.step++
	m.cursor = 0
	switch m.step {
	case StepDatabase:
		m.cursor = index(m.dbNames, m.a.Database)
	case StepVector:
		m.cursor = index(m.vecNames, m.a.Vector)
	case StepReview:
		m.prepareReview()
	}
}

func (m *Model) back() {
	if m.step == StepWelcome || m.step == StepDone {
		return
	}
	m.errMsg = ""
	m.step--
	m.cursor = 0
	switch m.step {
	case StepDatabase:
		m.cursor = index(m.dbNames, m.a.Database)
	case StepVector:
		m.cursor = index(m.vecNames, m.a.Vector)
	}
}

func index(ss []string, s string) int {
	for i, x := range ss {
		if x == s {
			return i
		}
	}
	return 0
}
