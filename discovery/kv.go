package discovery

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/consul/api"
)

// KVPair is one Consul KV entry.
type KVPair struct {
	Key         string
	Value       []byte
	ModifyIndex uint64
}

// KVList returns the entries under prefix, sorted by key, and the KV index
// of the prefix. With waitIndex > 0 it first waits (a blocking query, up to
// wait) until something under prefix changes after that index.
func (c *Client) KVList(ctx context.Context, prefix string, waitIndex uint64, wait time.Duration) ([]KVPair, uint64, error) {
	if waitIndex == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	pairs, meta, err := c.api.KV().List(prefix, (&api.QueryOptions{WaitIndex: waitIndex, WaitTime: wait}).WithContext(ctx))
	if err != nil {
		return nil, 0, fmt.Errorf("reading Consul KV %q: %w", prefix, err)
	}
	out := make([]KVPair, 0, len(pairs))
	for _, p := range pairs {
		out = append(out, KVPair{Key: p.Key, Value: p.Value, ModifyIndex: p.ModifyIndex})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, meta.LastIndex, nil
}

// KVOp is one change of a KV transaction: a put (Value set) or a delete
// (Delete), each checked against the entry's ModifyIndex as read (0: the
// key must not exist yet).
type KVOp struct {
	Key         string
	Value       []byte
	Delete      bool
	ModifyIndex uint64
}

// KVApply applies ops in one transaction, all or none: when any key was
// changed by someone else since it was read, nothing is written and the
// error names it.
func (c *Client) KVApply(ctx context.Context, ops []KVOp) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var txn api.TxnOps
	for _, op := range ops {
		switch {
		case op.Delete:
			txn = append(txn, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDeleteCAS, Key: op.Key, Index: op.ModifyIndex}})
		default:
			txn = append(txn, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: op.Key, Value: op.Value, Index: op.ModifyIndex}})
		}
	}
	ok, resp, _, err := c.api.Txn().Txn(txn, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("writing Consul KV: %w", err)
	}
	if !ok {
		msg := "someone else changed the policies since they were read"
		if resp != nil && len(resp.Errors) > 0 {
			if i := resp.Errors[0].OpIndex; i >= 0 && i < len(ops) {
				msg = fmt.Sprintf("%s was changed by someone else since it was read", ops[i].Key)
			}
		}
		return fmt.Errorf("nothing written: %s; look again (sidecar policy diff) and retry", msg)
	}
	return nil
}

// WatchKV calls fn with the entries under prefix: once when first read,
// then after each change, until ctx ends. While Consul does not answer it
// calls fn with the error and tries again with backoff (500 ms up to 10 s).
func (c *Client) WatchKV(ctx context.Context, prefix string, fn func([]KVPair, error)) {
	var index uint64
	backoff := 500 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		wait := c.timeout / 2
		pairs, next, err := c.KVList(ctx, prefix, index, wait)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			fn(nil, err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 10*time.Second)
			index = 0
			continue
		}
		backoff = 500 * time.Millisecond
		if next < index {
			next = 0 // Consul's index went backwards (a restart): start over
		}
		if first || next != index {
			fn(pairs, nil)
			first = false
		}
		index = max(next, 1)
	}
}

// KVPut writes value at key.
func (c *Client) KVPut(ctx context.Context, key string, value []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if _, err := c.api.KV().Put(&api.KVPair{Key: key, Value: value}, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("writing Consul KV %q: %w", key, err)
	}
	return nil
}

// KVDelete removes key; a key that does not exist is not an error.
func (c *Client) KVDelete(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if _, err := c.api.KV().Delete(key, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("deleting Consul KV %q: %w", key, err)
	}
	return nil
}

// KVGet reads key: its value and ModifyIndex, and whether it exists (a key
// that does not exist is no error). The index is what KVCAS checks.
func (c *Client) KVGet(ctx context.Context, key string) (value []byte, modifyIndex uint64, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	p, _, err := c.api.KV().Get(key, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, 0, false, fmt.Errorf("reading Consul KV %q: %w", key, err)
	}
	if p == nil {
		return nil, 0, false, nil
	}
	return p.Value, p.ModifyIndex, true, nil
}

// KVCAS writes value at key only if the key's ModifyIndex is still
// modifyIndex as read by KVGet (0: only if the key does not exist yet).
// It reports false, with no error, when someone else wrote the key in
// between: read it again and retry.
func (c *Client) KVCAS(ctx context.Context, key string, value []byte, modifyIndex uint64) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ok, _, err := c.api.KV().CAS(&api.KVPair{Key: key, Value: value, ModifyIndex: modifyIndex}, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("writing Consul KV %q: %w", key, err)
	}
	return ok, nil
}
