package main

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/internal/consultest"
)

// upstreamService is the Consul service the sidecar's upstream "up"
// resolves to: the upstream process, registered by the harness.
const upstreamService = "bench-upstream"

// startConsul starts a Consul dev agent (the binary scripts/consul.sh
// builds, or $CONSUL_BIN, or consul on $PATH), waits for its leader and
// registers the upstream as upstreamService. It returns the HTTP address.
func (b *bench) startConsul(upAddr string) (string, error) {
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
	p, err := b.g.start("consul", "", nil, append([]string{bin}, consultest.DevArgs("bench", ports[0], ports[1], ports[2], ports[3])...)...)
	if err != nil {
		return "", err
	}
	if err := consultest.WaitReady(httpAddr, p.done); err != nil {
		return "", fmt.Errorf("%w\n%s", err, tail(p.log, 15))
	}
	host, port, _ := net.SplitHostPort(upAddr)
	portN, _ := strconv.Atoi(port)
	c, err := api.NewClient(&api.Config{Address: httpAddr})
	if err != nil {
		return "", err
	}
	if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: upstreamService + "-1", Name: upstreamService, Address: host, Port: portN}); err != nil {
		return "", fmt.Errorf("registering %s in Consul: %w", upstreamService, err)
	}
	return httpAddr, nil
}
