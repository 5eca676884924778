package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/agent-sidecar/sidecar/internal/consultest"
)

// upstreamService is the Consul service the sidecar's upstream "up"
// resolves to: the upstream process, registered by the harness.
const upstreamService = "bench-upstream"

// startConsul starts a Consul dev agent (the binary scripts/consul.sh
// builds, or $CONSUL_BIN, or consul on $PATH), waits for its leader and
// registers the upstream as upstreamService. It returns the HTTP address.
func (b *bench) startConsul(ctx context.Context, upAddr string) (string, error) {
	bin, err := consultest.FindBinary()
	if err != nil {
		return "", err
	}
	if out, err := exec.Command(bin, "version").Output(); err == nil {
		b.rep.Versions["consul"] = strings.TrimPrefix(strings.Fields(string(out) + " ?")[1], "v")
	}
	var ports [4]int
	for i := range ports {
		addr, err := freeAddr()
		if err != nil {
			return "", err
		}
		_, p, _ := net.SplitHostPort(addr)
		ports[i], _ = strconv.Atoi(p)
	}
	httpAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
	p, err := b.g.start("consul", "", nil, append([]string{bin}, consultest.DevArgs("benchrun", ports[0], ports[1], ports[2], ports[3])...)...)
	if err != nil {
		return "", err
	}
	if err := waitLeader(ctx, p, httpAddr, 30*time.Second); err != nil {
		return "", err
	}
	host, port, _ := net.SplitHostPort(upAddr)
	portN, _ := strconv.Atoi(port)
	reg, _ := json.Marshal(map[string]any{"ID": upstreamService + "-1", "Name": upstreamService, "Address": host, "Port": portN})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+httpAddr+"/v1/agent/service/register", bytes.NewReader(reg))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("registering %s in Consul: %w", upstreamService, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("registering %s in Consul: %s %s", upstreamService, resp.Status, body)
	}
	return httpAddr, nil
}

// waitLeader polls Consul until it has elected a leader.
func waitLeader(ctx context.Context, p *proc, addr string, limit time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(limit)
	for {
		if resp, err := c.Get("http://" + addr + "/v1/status/leader"); err == nil {
			var leader string
			_ = json.NewDecoder(resp.Body).Decode(&leader)
			resp.Body.Close()
			if leader != "" {
				return nil
			}
		}
		if err := p.exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consul on %s has no leader after %s", addr, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
