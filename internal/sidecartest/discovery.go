package sidecartest

import (
	"context"
	"sync"

	"github.com/agent-sidecar/sidecar/discovery"
)

// Discovery serves a fixed, changeable set of instances per service (the
// Discovery of sidecar.Options and proxy.Options). Its zero value knows no
// service.
type Discovery struct {
	mu   sync.Mutex
	sets map[string][]discovery.Instance
}

// Set makes ins the instances of service, from now on.
func (f *Discovery) Set(service string, ins ...discovery.Instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sets == nil {
		f.sets = map[string][]discovery.Instance{}
	}
	f.sets[service] = ins
}

// Instances is the set last given for q's service; Known only once one was.
func (f *Discovery) Instances(q discovery.Query) discovery.InstanceSet {
	f.mu.Lock()
	defer f.mu.Unlock()
	ins, ok := f.sets[q.Service]
	return discovery.InstanceSet{Instances: ins, Known: ok}
}

// Wait is Instances: it does not wait.
func (f *Discovery) Wait(_ context.Context, q discovery.Query) discovery.InstanceSet {
	return f.Instances(q)
}
