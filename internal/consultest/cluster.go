package consultest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/internal/testbin"
)

// Cluster ports: every node listens on its own loopback address
// (127.0.0.2, 127.0.0.3, …), so all use the same ports.
const (
	clusterServerPort = 28300
	clusterSerfLAN    = 28301
	clusterSerfWAN    = 28302
	clusterHTTP       = 28500
	clusterReady      = 60 * time.Second
)

// Cluster is a real multi-node Consul cluster on one machine: servers and
// client agents, each a process on its own loopback address.
type Cluster struct {
	Servers []*Node
	Clients []*Node
}

// Node is one agent of a Cluster.
type Node struct {
	Name     string
	IP       string
	HTTPAddr string // IP:28500
	Server   bool

	args []string
	bin  string
	out  *testbin.Tail

	mu   sync.Mutex
	proc *testbin.Process // nil when killed
}

// StartCluster starts servers servers (forming a Raft quorum) and clients
// client agents joined to them, on 127.0.0.2 upwards, waits until every
// node is a member and a leader is elected, and stops them when the test
// ends.
func StartCluster(t testing.TB, servers, clients int) *Cluster {
	t.Helper()
	bin := Program.Need(t)
	c := &Cluster{}
	ip := func(i int) string { return "127.0.0." + strconv.Itoa(2+i) }
	var joins []string
	for i := 0; i < servers; i++ {
		joins = append(joins, "-retry-join="+net.JoinHostPort(ip(i), strconv.Itoa(clusterSerfLAN)))
	}
	for i := 0; i < servers+clients; i++ {
		server := i < servers
		name := fmt.Sprintf("client-%d", i-servers+1)
		if server {
			name = fmt.Sprintf("server-%d", i+1)
		}
		n := &Node{Name: name, IP: ip(i), HTTPAddr: net.JoinHostPort(ip(i), strconv.Itoa(clusterHTTP)), Server: server,
			bin: bin, out: testbin.NewTail(outputLimit)}
		for _, port := range []int{clusterServerPort, clusterSerfLAN, clusterSerfWAN, clusterHTTP} {
			l, err := net.Listen("tcp", net.JoinHostPort(n.IP, strconv.Itoa(port)))
			if err != nil {
				t.Fatalf("consultest: %s:%d is taken (%v); the cluster needs ports 28300-28302 and 28500 on 127.0.0.2-%d", n.IP, port, err, 1+servers+clients)
			}
			l.Close()
		}
		n.args = []string{"agent", "-node=" + name, "-bind=" + n.IP, "-advertise=" + n.IP, "-client=" + n.IP,
			"-data-dir=" + t.TempDir(), "-log-level=warn",
			fmt.Sprintf("-hcl=ports { server = %d\nserf_lan = %d\nserf_wan = %d\nhttp = %d\ndns = -1\ngrpc = -1\ngrpc_tls = -1 }",
				clusterServerPort, clusterSerfLAN, clusterSerfWAN, clusterHTTP),
			"-hcl=performance { raft_multiplier = 1 }",
			`-hcl=check_update_interval = "0s"`,
			"-hcl=disable_update_check = true",
		}
		if server {
			n.args = append(n.args, "-server", "-bootstrap-expect="+strconv.Itoa(servers))
		}
		n.args = append(n.args, joins...)
		if err := n.start(); err != nil {
			t.Fatalf("consultest: starting %s: %v", name, err)
		}
		t.Cleanup(n.Kill)
		if server {
			c.Servers = append(c.Servers, n)
		} else {
			c.Clients = append(c.Clients, n)
		}
	}
	deadline := time.Now().Add(clusterReady)
	for _, n := range append(append([]*Node(nil), c.Servers...), c.Clients...) {
		for {
			err := n.ready(servers + clients)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("consultest: the cluster did not form within %s: %s: %v\n--- %s output (tail) ---\n%s",
					clusterReady, n.Name, err, n.Name, n.out.Last(tailLimit))
			}
			time.Sleep(pollEvery)
		}
	}
	return c
}

func (n *Node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	proc, err := testbin.Start(n.bin, n.args, n.out)
	if err != nil {
		return err
	}
	n.proc = proc
	return nil
}

// ready says whether the node answers, knows a leader and sees all members
// alive.
func (n *Node) ready(members int) error {
	client := &http.Client{Timeout: time.Second}
	var leader string
	if err := getJSON(client, "http://"+n.HTTPAddr+"/v1/status/leader", &leader); err != nil {
		return err
	}
	if leader == "" {
		return errors.New("no leader elected yet")
	}
	var ms []struct{ Status int }
	if err := getJSON(client, "http://"+n.HTTPAddr+"/v1/agent/members", &ms); err != nil {
		return err
	}
	alive := 0
	for _, m := range ms {
		if m.Status == 1 {
			alive++
		}
	}
	if alive < members {
		return fmt.Errorf("%d of %d members alive", alive, members)
	}
	return nil
}

// Kill stops the node at once (SIGKILL), as a crashed machine would. It is
// safe to call more than once.
func (n *Node) Kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil {
		n.proc.Kill()
		n.proc = nil
	}
}

// Client returns a consul/api client talking to this node.
func (n *Node) Client(t testing.TB) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: n.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Output is the tail of the node's output.
func (n *Node) Output() string { return n.out.String() }
