package sidecar

import (
	"github.com/agent-sidecar/sidecar/sidecar/kvpolicy"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
)

// reportPoliciesAtStart says once, in the log, status, events and the sidecar
// check, that the policies could not be read at start or were rejected:
// the sidecar runs on its local files until a valid change arrives.
func (s *Sidecar) reportPoliciesAtStart(k *kvpolicy.Follower) {
	unread, err := k.AtStart()
	if unread != nil {
		s.log.Warn("fleet policies not read yet; starting with the local files", "prefix", k.Prefix(), "error", unread)
	}
	if err == nil {
		return
	}
	s.log.Error("fleet policies in Consul KV rejected; starting with the local files only, until a valid change "+
		"of the policies arrives", "prefix", k.Prefix(), "error", err)
	info := ReloadInfo{At: s.now(), Error: err.Error(), Sources: s.Config().Sources, PoliciesRejected: true}
	s.mu.Lock()
	s.lastReload = &info
	s.mu.Unlock()
	s.publish(notify.Event{Type: notify.EventConfigRejected, Detail: info.Error,
		Text: "Fleet policies in Consul KV rejected; the sidecar runs on its local files: " + firstLine(info.Error)})
	s.pushSidecarCheck()
}
