package discovery

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/hashicorp/consul/api"
)

// Retry delays while Consul is unreachable: doubling from backoffMin up to
// backoffMax, each shortened by up to a fifth at random so that many
// sidecars do not retry in step.
const (
	backoffMin = 500 * time.Millisecond
	backoffMax = 10 * time.Second
)

// Run registers the service with its checks and keeps it registered until
// ctx is done. It pushes every SetCheck to Consul, checks every SyncInterval
// that the agent still knows the service, and registers it again when Consul
// lost it. While Consul is unreachable it retries with backoff. Run does not
// deregister when it returns; call Deregister for that. Call Run once.
func (r *Registrar) Run(ctx context.Context) {
	failures := 0
	nextVerify := time.Now().Add(r.syncInterval)
	for {
		verify := !time.Now().Before(nextVerify)
		if verify {
			nextVerify = time.Now().Add(r.syncInterval)
		}
		err := r.sync(ctx, verify)
		if ctx.Err() != nil {
			return
		}
		var wait time.Duration
		if err != nil {
			failures++
			wait = backoff(failures)
			r.noteFailure(err, failures, wait)
		} else {
			failures = 0
			wait = time.Until(nextVerify)
		}
		// While retrying, SetCheck does not cut the backoff short: its
		// update goes out with the next attempt.
		if !r.sleep(ctx, wait, err == nil) {
			return
		}
	}
}

// sync brings Consul in line with the desired state: registers when needed
// (or when verify finds the service gone) and pushes pending check states.
func (r *Registrar) sync(ctx context.Context, verify bool) error {
	select {
	case r.io <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.io }()

	r.mu.Lock()
	if r.deregistered {
		r.mu.Unlock()
		return nil
	}
	need, stale, id := r.needRegister, r.staleID, r.svc.ID
	r.mu.Unlock()

	if stale != "" {
		if err := r.deregister(ctx, stale); err != nil {
			return fmt.Errorf("removing old service %q: %w", stale, err)
		}
		r.mu.Lock()
		if r.staleID == stale {
			r.staleID = ""
		}
		r.mu.Unlock()
	}
	if !need && verify {
		found, err := r.serviceExists(ctx, id)
		if err != nil {
			return err
		}
		if !found {
			r.log.Warn("service missing from consul agent, registering it again", "service_id", id)
			need = true
		}
	}
	if need {
		if err := r.register(ctx); err != nil {
			return err
		}
	}
	return r.pushChecks(ctx, true)
}

// register (re-)registers the service with its checks, each starting in its
// desired status. Consul takes no check output at registration, so every
// check is marked pending and its output pushed right after.
func (r *Registrar) register(ctx context.Context) error {
	r.mu.Lock()
	reg := r.registrationLocked()
	gen := r.svcGen
	for _, c := range r.svc.Checks {
		r.pending[c.ID] = struct{}{}
	}
	r.mu.Unlock()

	rctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(rctx)
	if err := r.api.Agent().ServiceRegisterOpts(reg, opts); err != nil {
		return fmt.Errorf("registering service %q: %w", reg.ID, err)
	}

	r.mu.Lock()
	r.needRegister = r.svcGen != gen // Update ran meanwhile: register again
	r.registeredID = reg.ID
	r.state.Registered = true
	r.state.LastRegistered = time.Now()
	r.state.Registrations++
	n := r.state.Registrations
	r.mu.Unlock()
	r.log.Info("registered", "service_id", reg.ID, "service_name", reg.Name,
		"consul_address", r.address, "registrations", n)
	return nil
}

func (r *Registrar) registrationLocked() *api.AgentServiceRegistration {
	svc := r.svc
	reg := &api.AgentServiceRegistration{
		ID:      svc.ID,
		Name:    svc.Name,
		Address: svc.Address,
		Port:    svc.Port,
		Tags:    slices.Clone(svc.Tags),
		Meta:    svc.Meta,
	}
	for _, c := range svc.Checks {
		ac := &api.AgentServiceCheck{
			CheckID: c.ID,
			Name:    c.Name,
			Notes:   c.Notes,
			TTL:     c.TTL.String(),
			Status:  string(r.desired[c.ID].status),
		}
		if c.DeregisterCriticalAfter > 0 {
			ac.DeregisterCriticalServiceAfter = c.DeregisterCriticalAfter.String()
		}
		reg.Checks = append(reg.Checks, ac)
	}
	return reg
}

// pushChecks sends the latest desired state of every pending check. When the
// agent no longer knows a check and mayRegister is set, the service is
// registered again and the pushes start over (register marks every check
// pending).
func (r *Registrar) pushChecks(ctx context.Context, mayRegister bool) error {
	r.mu.Lock()
	ids := slices.Sorted(maps.Keys(r.pending))
	r.mu.Unlock()

	for _, id := range ids {
		r.mu.Lock()
		st, wanted := r.desired[id]
		_, isPending := r.pending[id]
		delete(r.pending, id)
		r.mu.Unlock()
		if !wanted || !isPending {
			continue // removed by Update, or pushed already
		}
		err := r.updateTTL(ctx, id, st)
		if err == nil {
			continue
		}
		r.mu.Lock()
		r.pending[id] = struct{}{}
		r.mu.Unlock()
		if !isUnknownCheck(err) || !mayRegister {
			return fmt.Errorf("updating check %q: %w", id, err)
		}
		r.log.Warn("check missing from consul agent, registering the service again", "check_id", id)
		if err := r.register(ctx); err != nil {
			return err
		}
		return r.pushChecks(ctx, false)
	}
	return nil
}

func (r *Registrar) updateTTL(ctx context.Context, id string, st checkState) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	q := (&api.QueryOptions{}).WithContext(ctx)
	if err := r.api.Agent().UpdateTTLOpts(id, st.output, string(st.status), q); err != nil {
		return err
	}
	r.log.Debug("check updated", "check_id", id, "status", string(st.status))
	return nil
}

// serviceExists asks the local agent whether it still has the service.
func (r *Registrar) serviceExists(ctx context.Context, id string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	_, _, err := r.api.Agent().Service(id, (&api.QueryOptions{}).WithContext(ctx))
	switch {
	case err == nil:
		return true, nil
	case isNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("looking up service %q: %w", id, err)
	}
}

// noteFailure records a failed sync for State and logs it: Warn for the first
// failure of an outage, Debug for the retries after it. Any failure means the
// next attempt registers again, in case Consul restarted meanwhile.
func (r *Registrar) noteFailure(err error, failures int, retryIn time.Duration) {
	msg := r.scrub(err).Error()
	r.mu.Lock()
	r.needRegister = true
	r.state.Registered = false
	r.state.LastError = msg
	r.state.LastErrorAt = time.Now()
	id := r.svc.ID
	r.mu.Unlock()
	if failures == 1 {
		r.log.Warn("consul sync failed, retrying with backoff", "service_id", id,
			"consul_address", r.address, "error", msg)
		return
	}
	r.log.Debug("consul sync failed again", "service_id", id, "attempt", failures,
		"retry_in", retryIn, "error", msg)
}

// sleep waits for d, ctx, or (when wakeable) a SetCheck or Update. It
// returns false when ctx is done.
func (r *Registrar) sleep(ctx context.Context, d time.Duration, wakeable bool) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	var wake <-chan struct{}
	if wakeable {
		wake = r.wake
	}
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}

// backoff returns the delay before retry number n (from 1).
func backoff(n int) time.Duration {
	d := backoffMax
	if n <= 5 { // 500ms << 5 = 16s is past the cap already
		d = min(backoffMin<<(n-1), backoffMax)
	}
	return d - rand.N(d/5)
}
