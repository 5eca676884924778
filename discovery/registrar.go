package discovery

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
)

// WaitingOutput is the output of a check before its first update.
const WaitingOutput = "waiting for the first heartbeat"

// Registrar keeps one service registered in the local Consul agent and pushes
// the desired state of its TTL checks. SetCheck and Update only record what
// is wanted and wake Run; Run does the talking to Consul, retries while
// Consul is unreachable and registers again when Consul forgot the service.
type Registrar struct {
	api          *api.Client
	http         *http.Client // api's, for CloseIdleConnections
	log          hclog.Logger
	address      string // scheme://host:port, for status output
	token        string // only to scrub it from error texts
	syncInterval time.Duration
	timeout      time.Duration

	wake chan struct{} // capacity 1: there is work for Run
	io   chan struct{} // capacity 1: held by Run or Deregister while talking to Consul

	mu           sync.Mutex
	svc          Service
	svcGen       uint64                // incremented by Update
	desired      map[string]checkState // check ID -> wanted status and output
	pending      map[string]struct{}   // checks whose desired state is not yet in Consul
	needRegister bool                  // the service must be (re-)registered
	registeredID string                // the service ID last registered
	staleID      string                // a service ID to remove after Update changed the ID
	deregistered bool                  // Deregister was called; Run stays idle
	state        RegistrationState     // for State()
}

type checkState struct {
	status CheckStatus
	output string
}

// NewRegistrar validates svc and builds a Registrar for the Consul agent cfg
// points to. It does no I/O: nothing is registered until Run. A nil log
// discards log output.
func NewRegistrar(cfg Config, svc Service, log hclog.Logger) (*Registrar, error) {
	if err := svc.Validate(); err != nil {
		return nil, err
	}
	client, hc, addr, err := newAPIClient(cfg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	interval := cfg.SyncInterval
	if interval <= 0 {
		interval = DefaultSyncInterval
	}
	r := &Registrar{
		api:          client,
		http:         hc,
		log:          log,
		address:      addr,
		token:        cfg.Token,
		syncInterval: interval,
		timeout:      requestTimeout(cfg),
		wake:         make(chan struct{}, 1),
		io:           make(chan struct{}, 1),
		desired:      map[string]checkState{},
		pending:      map[string]struct{}{},
		needRegister: true,
	}
	r.setServiceLocked(svc)
	r.state.ConsulAddress = addr
	return r, nil
}

// Validate reports whether s can be registered: it needs an ID, a name, a
// port in range, and checks with unique IDs and positive TTLs.
func (s Service) Validate() error {
	var errs []error
	if s.ID == "" {
		errs = append(errs, errors.New("service ID is empty"))
	}
	if s.Name == "" {
		errs = append(errs, errors.New("service name is empty"))
	}
	if s.Port < 0 || s.Port > 65535 {
		errs = append(errs, fmt.Errorf("service port %d is out of range", s.Port))
	}
	seen := map[string]bool{}
	for i, c := range s.Checks {
		switch {
		case c.ID == "":
			errs = append(errs, fmt.Errorf("check %d: ID is empty", i))
		case seen[c.ID]:
			errs = append(errs, fmt.Errorf("check %q: duplicate ID", c.ID))
		}
		seen[c.ID] = true
		if c.TTL <= 0 {
			errs = append(errs, fmt.Errorf("check %q: TTL must be positive", c.ID))
		}
		if c.DeregisterCriticalAfter < 0 {
			errs = append(errs, fmt.Errorf("check %q: deregister_critical_after must not be negative", c.ID))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid service definition: %w", errors.Join(errs...))
	}
	return nil
}

// SetCheck records the desired status and output of a check and wakes Run,
// which pushes it to Consul; each push also restarts the check's TTL. Only the
// latest state per check is pushed. SetCheck never blocks on Consul. Unknown
// check IDs and invalid statuses are ignored.
func (r *Registrar) SetCheck(checkID string, status CheckStatus, output string) {
	if !status.valid() {
		r.log.Warn("ignoring check update with an invalid status", "check_id", checkID, "status", string(status))
		return
	}
	r.mu.Lock()
	if _, ok := r.desired[checkID]; !ok {
		r.mu.Unlock()
		r.log.Debug("ignoring update of an unknown check", "check_id", checkID)
		return
	}
	r.desired[checkID] = checkState{status: status, output: output}
	r.pending[checkID] = struct{}{}
	r.mu.Unlock()
	r.signal()
}

// Update replaces the service definition, for example after a config reload;
// Run registers it again. Checks that keep their ID keep their desired status
// and output; new checks start critical. An invalid definition is logged and
// ignored (check it first with Service.Validate).
func (r *Registrar) Update(svc Service) {
	if err := svc.Validate(); err != nil {
		r.log.Error("ignoring invalid service definition", "service_id", svc.ID, "error", err)
		return
	}
	r.mu.Lock()
	if r.registeredID != "" && r.registeredID != svc.ID {
		r.staleID = r.registeredID
	}
	r.setServiceLocked(svc)
	r.svcGen++
	r.needRegister = true
	r.mu.Unlock()
	r.signal()
}

// State returns a snapshot of the registration. Safe for concurrent use.
func (r *Registrar) State() RegistrationState {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.state
	s.ServiceID = r.svc.ID
	return s
}

// Deregister removes the service and its checks from the Consul agent,
// within ctx. Afterwards Run registers nothing again, so call it when
// shutting down (ideally after Run returned). A service Consul does not know
// counts as removed.
func (r *Registrar) Deregister(ctx context.Context) error {
	select {
	case r.io <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("deregistering from consul: %w", ctx.Err())
	}
	defer func() { <-r.io }()

	r.mu.Lock()
	r.deregistered = true
	ids := []string{r.svc.ID}
	if r.registeredID != "" && r.registeredID != r.svc.ID {
		ids = append(ids, r.registeredID)
	}
	r.mu.Unlock()

	for _, id := range ids {
		if err := r.deregister(ctx, id); err != nil {
			return r.scrub(fmt.Errorf("deregistering service %q from consul: %w", id, err))
		}
	}
	r.mu.Lock()
	r.state.Registered = false
	r.registeredID = ""
	r.mu.Unlock()
	r.log.Info("deregistered", "service_id", ids[0], "consul_address", r.address)
	return nil
}

// deregister removes one service; a 404 means it is already gone.
func (r *Registrar) deregister(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	err := r.api.Agent().ServiceDeregisterOpts(id, (&api.QueryOptions{}).WithContext(ctx))
	if isNotFound(err) {
		return nil
	}
	return err
}

// setServiceLocked stores a copy of svc and aligns the desired check states
// with its checks. r.mu must be held (or r not yet shared).
func (r *Registrar) setServiceLocked(svc Service) {
	svc.Tags = slices.Clone(svc.Tags)
	svc.Meta = maps.Clone(svc.Meta)
	svc.Checks = slices.Clone(svc.Checks)
	r.svc = svc

	desired := make(map[string]checkState, len(svc.Checks))
	for _, c := range svc.Checks {
		st, ok := r.desired[c.ID]
		if !ok {
			st = checkState{status: Critical, output: WaitingOutput}
		}
		desired[c.ID] = st
	}
	r.desired = desired
	for id := range r.pending {
		if _, ok := desired[id]; !ok {
			delete(r.pending, id)
		}
	}
}

// signal wakes Run without blocking.
func (r *Registrar) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// scrub removes the token from an error's text. consul/api sends the token
// in a header, so it should never be there; this is a second line of defence.
func (r *Registrar) scrub(err error) error {
	if err == nil || r.token == "" || !strings.Contains(err.Error(), r.token) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), r.token, "[redacted]"))
}

func (s CheckStatus) valid() bool {
	return s == Passing || s == Warning || s == Critical
}

// isNotFound reports whether err is Consul answering 404.
func isNotFound(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == 404
}

// isUnknownCheck reports whether a TTL update failed because the agent no
// longer has the check (Consul lost its state, or the service was removed).
func isUnknownCheck(err error) bool {
	var se api.StatusError
	if !errors.As(err, &se) {
		return false
	}
	return se.Code == 404 || strings.Contains(se.Body, "does not have associated TTL")
}

// CloseIdleConnections closes the Registrar's idle connections to Consul,
// for a process that goes on without it (Run has returned and the service
// is deregistered). A later call opens new ones.
func (r *Registrar) CloseIdleConnections() { r.http.CloseIdleConnections() }
