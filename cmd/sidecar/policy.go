package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/policies"
)

// defaultPolicyPrefix is where `sidecar policy` reads and writes when
// neither -prefix nor $SIDECAR_POLICY_PREFIX says otherwise.
const defaultPolicyPrefix = "sidecar/policies/"

// runPolicy serves `sidecar policy diff|push DIR`: fleet-wide policies in
// Consul KV, written as a whole directory in one transaction.
func runPolicy(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "diff" && args[0] != "push") {
		fmt.Fprint(stderr, policyUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			return exitOK
		}
		return exitUsage
	}
	verb := args[0]
	fs := flag.NewFlagSet("policy "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	consulAddr := fs.String("consul", "", "Consul HTTP address (default $CONSUL_HTTP_ADDR, else 127.0.0.1:8500); the token is $CONSUL_HTTP_TOKEN")
	prefix := fs.String("prefix", envOr("SIDECAR_POLICY_PREFIX", defaultPolicyPrefix), "the KV prefix the sidecars read (consul.policy_prefix; $SIDECAR_POLICY_PREFIX)")
	service := fs.String("service", "", "the policies of one service (PREFIX/service/NAME/) instead of the fleet's")
	index := fs.Uint64("index", 0, "push: refuse unless the policies are still as `diff` read them at this index")
	fs.Usage = func() { fmt.Fprint(fs.Output(), policyUsage+"\nFlags:\n"); fs.PrintDefaults() }
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "sidecar policy %s: give one directory of *.hcl policy files\n", verb)
		return exitUsage
	}
	dir := fs.Arg(0)
	p := *prefix
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	target := p
	if *service != "" {
		if strings.ContainsAny(*service, "/ \t") {
			fmt.Fprintf(stderr, "sidecar policy %s: -service %q is not a service name\n", verb, *service)
			return exitUsage
		}
		target = p + "service/" + *service + "/"
	}

	want, code := readPolicyDir(dir, target, stderr)
	if code != exitOK {
		return code
	}
	client, err := discovery.NewClient(discovery.Config{Address: *consulAddr})
	if err != nil {
		fmt.Fprintf(stderr, "sidecar policy %s: %v\n", verb, err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	pairs, kvIndex, err := client.KVList(ctx, target, 0, 0)
	if err != nil {
		fmt.Fprintf(stderr, "sidecar policy %s: %v\n", verb, err)
		return exitUnreachable
	}
	have := map[string]discovery.KVPair{}
	for _, pr := range pairs {
		if rel := strings.TrimPrefix(pr.Key, target); strings.HasSuffix(rel, ".hcl") && !strings.Contains(rel, "/") {
			have[pr.Key] = pr
		}
	}
	ops := planPolicy(want, have)

	if verb == "diff" {
		if len(ops) == 0 {
			fmt.Fprintf(stdout, "no changes: %s matches %s (index %d)\n", target, dir, kvIndex)
			return exitOK
		}
		printPolicyDiff(stdout, ops, want, have)
		fmt.Fprintf(stdout, "%d change(s) to %s; read at index %d: sidecar policy push -index %d %s\n",
			len(ops), target, kvIndex, kvIndex, dir)
		return exitOK
	}
	if *index != 0 && *index != kvIndex {
		fmt.Fprintf(stderr, "sidecar policy push: nothing written: %s changed since index %d (now %d); run sidecar policy diff again\n",
			target, *index, kvIndex)
		return exitError
	}
	if len(ops) == 0 {
		fmt.Fprintf(stdout, "no changes: %s already matches %s\n", target, dir)
		return exitOK
	}
	if err := client.KVApply(ctx, ops); err != nil {
		fmt.Fprintf(stderr, "sidecar policy push: %v\n", err)
		return exitError
	}
	printPolicyDiff(stdout, ops, want, have)
	fmt.Fprintf(stdout, "pushed %d change(s) to %s; every sidecar reading it applies them within seconds\n", len(ops), target)
	return exitOK
}

const policyUsage = `Usage: sidecar policy diff|push [-consul ADDR] [-prefix P] [-service NAME] [-index N] DIR

Fleet-wide policies in Consul KV: the *.hcl files of DIR (breaker,
upstream, model and notify blocks only) as the keys PREFIX/NAME.hcl, or
PREFIX/service/NAME/FILE.hcl with -service. Sidecars with
consul { policy_prefix = "sidecar/policies/" } layer them below their own
files: defaults < fleet < service < local files. A policy cannot call
env(), nor define a model answering to a local model's label or name;
each file may be at most 1 MiB, nested at most 64 levels deep.

  diff   validates DIR and shows what push would change (+ added,
         - removed, ~ changed with a unified diff) and the KV index read
  push   validates DIR and makes the KV match it in one transaction:
         nothing is written when a key changed since it was read, or,
         with -index, when anything under the prefix changed since diff

Exit codes: 0 done (or no changes), 1 invalid policies or a push refused,
2 bad flags, 3 Consul did not answer.
`

// readPolicyDir reads and validates the *.hcl files of dir; the keys are
// target + file name.
func readPolicyDir(dir, target string, stderr io.Writer) (map[string][]byte, int) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		fmt.Fprintf(stderr, "sidecar policy: %v\n", err)
		return nil, exitUsage
	}
	want := map[string][]byte{}
	var srcs []policies.Source
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".hcl") {
			continue
		}
		file := filepath.Join(dir, e.Name())
		data, err := readPolicyFile(file)
		if err != nil {
			fmt.Fprintf(stderr, "sidecar policy: %v\n", err)
			return nil, exitError
		}
		want[target+e.Name()] = data
		srcs = append(srcs, policies.Source{Name: file, Data: data})
	}
	if len(srcs) == 0 {
		fmt.Fprintf(stderr, "sidecar policy: %s has no *.hcl files\n", dir)
		return nil, exitUsage
	}
	if err := policies.ValidatePolicies(srcs); err != nil {
		fmt.Fprintf(stderr, "%v\nsidecar policy: %s is not valid; nothing read from or written to Consul\n", err, dir)
		return nil, exitError
	}
	return want, exitOK
}

// planPolicy lists the writes and deletes that make have equal want, each
// checked against the index it was read at.
func planPolicy(want map[string][]byte, have map[string]discovery.KVPair) []discovery.KVOp {
	var ops []discovery.KVOp
	for key, data := range want {
		cur, ok := have[key]
		switch {
		case !ok:
			ops = append(ops, discovery.KVOp{Key: key, Value: data})
		case string(cur.Value) != string(data):
			ops = append(ops, discovery.KVOp{Key: key, Value: data, ModifyIndex: cur.ModifyIndex})
		}
	}
	for key, cur := range have {
		if _, ok := want[key]; !ok {
			ops = append(ops, discovery.KVOp{Key: key, Delete: true, ModifyIndex: cur.ModifyIndex})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].Key < ops[j].Key })
	return ops
}

func printPolicyDiff(w io.Writer, ops []discovery.KVOp, want map[string][]byte, have map[string]discovery.KVPair) {
	for _, op := range ops {
		cur, existed := have[op.Key]
		switch {
		case op.Delete:
			fmt.Fprintf(w, "- %s (removed)\n", op.Key)
		case !existed:
			fmt.Fprintf(w, "+ %s (new, %d lines)\n", op.Key, strings.Count(string(want[op.Key]), "\n"))
		default:
			fmt.Fprintf(w, "~ %s\n", op.Key)
			d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
				A: difflib.SplitLines(string(cur.Value)), B: difflib.SplitLines(string(want[op.Key])),
				FromFile: op.Key + "@" + strconv.FormatUint(cur.ModifyIndex, 10), ToFile: op.Key + " (new)", Context: 2,
			})
			for _, line := range strings.SplitAfter(strings.TrimRight(d, "\n"), "\n") {
				fmt.Fprintf(w, "    %s", strings.TrimRight(line, "\n")+"\n")
			}
		}
	}
}

// readPolicyFile reads a policy file of at most policies.MaxSourceBytes,
// without reading more of a larger one.
func readPolicyFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, policies.MaxSourceBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > policies.MaxSourceBytes {
		return nil, fmt.Errorf("%s: larger than the limit of %d bytes (1 MiB) for a policy: split it into several files; "+
			"nothing read from or written to Consul", name, policies.MaxSourceBytes)
	}
	return data, nil
}
