package discovery

import (
	"context"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
)

// Blocking query limits. Consul caps a blocking wait at 10 minutes and adds
// up to 1/16 of it as jitter.
const (
	DefaultWaitTime = 30 * time.Second
	maxWaitTime     = 10 * time.Minute
)

// Query selects instances of one service.
type Query struct {
	Service string
	Tags    []string // all must be present
	Filter  string   // a Consul filter expression (bexpr), optional
}

// Key is a stable string naming the query, such as
// "researcher?tag=a&tag=b&filter=Service.Meta.tier == \"gold\"". Tags are
// sorted and duplicates dropped, so queries selecting the same instances
// have the same key. The filter comes last and is not escaped, to stay
// readable in status output.
func (q Query) Key() string {
	var b strings.Builder
	b.WriteString(url.PathEscape(q.Service))
	sep := byte('?')
	for _, t := range normalTags(q.Tags) {
		b.WriteByte(sep)
		b.WriteString("tag=")
		b.WriteString(url.QueryEscape(t))
		sep = '&'
	}
	if q.Filter != "" {
		b.WriteByte(sep)
		b.WriteString("filter=")
		b.WriteString(q.Filter)
	}
	return b.String()
}

// Instance is one instance of a service that may receive traffic.
type Instance struct {
	ID      string            `json:"id"` // service ID
	Service string            `json:"service"`
	Node    string            `json:"node"`
	Address string            `json:"address"` // the service address, else the node's
	Port    int               `json:"port"`
	Tags    []string          `json:"tags,omitempty"`
	Meta    map[string]string `json:"meta,omitempty"`
}

// MetaScheme is the service meta key by which an instance says how it is
// reached: "https" (any case) for TLS, verified against the system's
// authorities and tls.ca_file; anything else, or no key, for plain HTTP.
const MetaScheme = "sidecar_scheme"

// Scheme is how the instance is reached: "https" when its service meta
// MetaScheme says so, else "http".
func (i Instance) Scheme() string {
	if strings.EqualFold(strings.TrimSpace(i.Meta[MetaScheme]), "https") {
		return "https"
	}
	return "http"
}

// HostPort is the instance's address and port, ready to dial.
func (i Instance) HostPort() string {
	return net.JoinHostPort(i.Address, strconv.Itoa(i.Port))
}

// InstanceSet is what the watcher knows about one query.
type InstanceSet struct {
	// Instances are the instances with no critical check, sorted by ID.
	// The slice is shared: callers must not modify it.
	Instances []Instance `json:"instances"`
	Known     bool       `json:"known"`                // false until Consul first answered
	Stale     bool       `json:"stale"`                // the last query failed: Instances is the last known set
	Updated   time.Time  `json:"updated,omitzero"`     // when Consul last answered
	LastError string     `json:"last_error,omitempty"` // the last error, "" once Consul answers again
}

// Watcher keeps the healthy instances of a set of queries current in memory,
// one Consul blocking query per watched query, so that a request never waits
// for Consul. Instances reads without locks; Watch and Retain change the set
// of queries; Run owns the goroutines that talk to Consul.
type Watcher struct {
	// WaitTime is how long each blocking query waits for a change before
	// Consul answers anyway. Default DefaultWaitTime; at most 10m. Set it
	// before Run.
	WaitTime time.Duration

	api     *api.Client
	http    *http.Client // api's, for CloseIdleConnections
	log     hclog.Logger
	address string        // scheme://host:port, for logs
	token   string        // only to scrub it from error texts
	timeout time.Duration // added to the blocking wait to bound one request

	// index maps a service name to its watched queries. It is replaced,
	// never changed in place, so readers need no lock.
	index atomic.Pointer[map[string][]*queryWatch]
	wake  chan struct{} // capacity 1: Run has watches to start

	mu       sync.Mutex // serialises changes to index; guards the fields below
	pending  []*queryWatch
	onChange []func(Query, InstanceSet)
}

// queryWatch is the state of one watched query. set is written only by the
// goroutine following the query and read by anyone.
type queryWatch struct {
	q     Query // tags sorted and unique
	key   string
	set   atomic.Pointer[InstanceSet]
	known chan struct{} // closed at the first answer from Consul
	gone  chan struct{} // closed when Retain drops the query

	cancel context.CancelFunc // stops the goroutine; set by Run under Watcher.mu
}

// NewWatcher returns a Watcher for the Consul agent cfg points to. It does no
// I/O: queries are followed once Run is called. A nil log discards log
// output.
func NewWatcher(cfg Config, log hclog.Logger) (*Watcher, error) {
	// Each blocking query carries its own deadline (the wait plus
	// RequestTimeout); the client's own timeout only has to outlast the
	// longest wait Consul allows.
	timeout := requestTimeout(cfg)
	clientCfg := cfg
	clientCfg.RequestTimeout = maxWaitTime + maxWaitTime/16 + timeout
	client, hc, addr, err := newAPIClient(clientCfg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	w := &Watcher{
		api:     client,
		http:    hc,
		log:     log,
		address: addr,
		token:   cfg.Token,
		timeout: timeout,
		wake:    make(chan struct{}, 1),
	}
	w.index.Store(&map[string][]*queryWatch{})
	return w, nil
}

// Watch makes sure q is being watched. It is cheap when q is watched
// already, and safe for concurrent use. Before Run, queries are remembered
// and Run starts them. A query without a service is ignored.
func (w *Watcher) Watch(q Query) {
	if w.lookup(q) == nil {
		w.add(q)
	}
}

// Retain stops watching every query not in keep, for example after a
// configuration reload. Their goroutines end shortly after; Run waits for
// them.
func (w *Watcher) Retain(keep []Query) {
	wanted := make(map[string]bool, len(keep))
	for _, q := range keep {
		wanted[q.Key()] = true
	}
	var dropped []string
	w.mu.Lock()
	next := map[string][]*queryWatch{}
	for svc, ws := range *w.index.Load() {
		for _, qw := range ws {
			if wanted[qw.key] {
				next[svc] = append(next[svc], qw)
				continue
			}
			dropped = append(dropped, qw.key)
			close(qw.gone)
			if qw.cancel != nil {
				qw.cancel()
			}
		}
	}
	w.index.Store(&next)
	w.pending = slices.DeleteFunc(w.pending, func(qw *queryWatch) bool { return !wanted[qw.key] })
	w.mu.Unlock()
	for _, key := range dropped {
		w.log.Info("stopped watching query", "query", key)
	}
}

// Instances returns what is known about q, from memory: it never blocks and
// takes no lock once q is watched. An unknown query starts being watched and
// is reported as not Known yet.
func (w *Watcher) Instances(q Query) InstanceSet {
	qw := w.lookup(q)
	if qw == nil {
		if qw = w.add(q); qw == nil {
			return InstanceSet{}
		}
	}
	return *qw.set.Load()
}

// Wait blocks until Consul has answered about q (watching it if needed), q
// is no longer watched, or ctx is done, and returns what is known then. Use
// it for the first request of a query; later ones use Instances.
func (w *Watcher) Wait(ctx context.Context, q Query) InstanceSet {
	qw := w.lookup(q)
	if qw == nil {
		if qw = w.add(q); qw == nil {
			return InstanceSet{}
		}
	}
	select {
	case <-qw.known:
	case <-qw.gone:
	case <-ctx.Done():
	}
	return *qw.set.Load()
}

// Sets returns the state of every watched query by key, for status output.
func (w *Watcher) Sets() map[string]InstanceSet {
	idx := *w.index.Load()
	out := make(map[string]InstanceSet, len(idx))
	for _, ws := range idx {
		for _, qw := range ws {
			out[qw.key] = *qw.set.Load()
		}
	}
	return out
}

// OnChange registers fn to be called after a query's set changed: its
// instances, or whether it is stale. fn runs on the goroutine following the
// query, with no lock held; a slow fn delays that query's next update.
func (w *Watcher) OnChange(fn func(q Query, set InstanceSet)) {
	w.mu.Lock()
	w.onChange = append(w.onChange, fn)
	w.mu.Unlock()
}

// Run follows every watched query, one goroutine each, starting queries
// watched later as they come, until ctx is done. It returns once all its
// goroutines have stopped. Call Run once.
func (w *Watcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		w.mu.Lock()
		for _, qw := range w.pending {
			qctx, cancel := context.WithCancel(ctx)
			qw.cancel = cancel
			wg.Go(func() {
				defer cancel()
				w.follow(qctx, qw)
			})
		}
		w.pending = nil
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
	}
}

// lookup finds the watch for q without locking or allocating.
func (w *Watcher) lookup(q Query) *queryWatch {
	for _, qw := range (*w.index.Load())[q.Service] {
		if qw.q.Filter == q.Filter && sameTags(qw.q.Tags, q.Tags) {
			return qw
		}
	}
	return nil
}

// add starts watching q unless it is watched already, and returns its
// watch; nil when q names no service.
func (w *Watcher) add(q Query) *queryWatch {
	if q.Service == "" {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if qw := w.lookup(q); qw != nil {
		return qw // added meanwhile
	}
	q.Tags = normalTags(q.Tags)
	qw := &queryWatch{q: q, key: q.Key(), known: make(chan struct{}), gone: make(chan struct{})}
	qw.set.Store(&InstanceSet{})

	old := *w.index.Load()
	next := maps.Clone(old)
	next[q.Service] = append(slices.Clip(old[q.Service]), qw)
	w.index.Store(&next)
	w.pending = append(w.pending, qw)
	select {
	case w.wake <- struct{}{}:
	default:
	}
	w.log.Debug("watching query", "query", qw.key)
	return qw
}

// listeners returns the OnChange callbacks registered so far.
func (w *Watcher) listeners() []func(Query, InstanceSet) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clip(w.onChange)
}

// normalTags returns tags sorted without duplicates, as a new slice.
func normalTags(tags []string) []string {
	if len(tags) == 0 {
		return nil
	}
	return slices.Compact(slices.Sorted(slices.Values(tags)))
}

// sameTags reports whether tags holds exactly the tags of norm, ignoring
// order and duplicates. norm is sorted and unique.
func sameTags(norm, tags []string) bool {
	if len(tags) < len(norm) {
		return false
	}
	for _, t := range tags {
		if _, ok := slices.BinarySearch(norm, t); !ok {
			return false
		}
	}
	for _, t := range norm {
		if !slices.Contains(tags, t) {
			return false
		}
	}
	return true
}

// CloseIdleConnections closes the Watcher's idle connections to Consul,
// for a process that goes on without it once Run has returned.
func (w *Watcher) CloseIdleConnections() { w.http.CloseIdleConnections() }
