package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// nginxConfig is nginx as a plain reverse proxy: two workers, keepalive
// connections to the upstream, no access log, everything it writes under
// prefix (it runs as the current user).
func nginxConfig(prefix, listen, up string) string {
	userLine := ""
	if os.Geteuid() == 0 {
		// As root nginx would switch its workers to nobody; stay root,
		// like everything else of the run.
		userLine = "user root root;\n"
	}
	return fmt.Sprintf(`# Written by tools/bench.
%sworker_processes 2;
worker_rlimit_nofile 8192;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;

events { worker_connections 4096; }

http {
  access_log off;
  client_body_temp_path %[2]s/tmp/body;
  proxy_temp_path       %[2]s/tmp/proxy;
  fastcgi_temp_path     %[2]s/tmp/fastcgi;
  uwsgi_temp_path       %[2]s/tmp/uwsgi;
  scgi_temp_path        %[2]s/tmp/scgi;

  upstream up {
    server %[3]s;
    keepalive 64;
  }

  server {
    listen %[4]s;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`, userLine, prefix, up, listen)
}

// startNginx starts nginx in front of the upstream at up, installing it
// first when it is missing and this runs as root. It returns the address
// nginx listens on.
func (b *bench) startNginx(ctx context.Context, up string) (string, *proc, error) {
	bin, err := b.findNginx(ctx)
	if err != nil {
		return "", nil, err
	}
	if out, err := exec.Command(bin, "-v").CombinedOutput(); err == nil {
		b.rep.Versions["nginx"] = strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: nginx/")
	}
	prefix := filepath.Join(b.tmp, "nginx")
	if err := os.MkdirAll(filepath.Join(prefix, "tmp"), 0o755); err != nil {
		return "", nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConfig(prefix, addr, up)), 0o644); err != nil {
		return "", nil, err
	}
	// -e: the error log before the configuration is read, which would
	// otherwise be the distribution's (not writable for a user).
	p, err := b.g.start("nginx", prefix, nil, bin, "-p", prefix+"/", "-c", conf, "-e", filepath.Join(prefix, "error.log"))
	if err != nil {
		return "", nil, err
	}
	if err := waitHTTP(ctx, p, "http://"+addr+"/search", 15*time.Second); err != nil {
		return "", nil, fmt.Errorf("%w\nerror.log: %s", err, tail(filepath.Join(prefix, "error.log"), 10))
	}
	return addr, p, nil
}

// findNginx returns nginx's path; missing, it installs it with apt-get
// when running as root.
func (b *bench) findNginx(ctx context.Context) (string, error) {
	look := func() string {
		if p, err := exec.LookPath("nginx"); err == nil {
			return p
		}
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
		return ""
	}
	if p := look(); p != "" {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("nginx is not installed (not on PATH nor in /usr/sbin), and installing it needs root: " +
			"sudo apt-get install nginx-light")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", errors.New("nginx is not installed and there is no apt-get to install it with")
	}
	b.logf("nginx is not installed: apt-get update && apt-get install -y nginx-light (log in %s)", filepath.Join(b.tmp, "apt.log"))
	// Should the package start the distribution's nginx (a machine whose
	// policy-rc.d allows it), it is stopped again: it is not ours to keep.
	_, err := os.Stat("/run/nginx.pid")
	wasRunning := err == nil
	if err := b.apt(ctx, "update", "-q"); err != nil {
		return "", err
	}
	if err := b.apt(ctx, "install", "-y", "-q", "--no-install-recommends", "nginx-light"); err != nil {
		b.logf("nginx-light: %v; trying the package nginx", err)
		if err := b.apt(ctx, "install", "-y", "-q", "--no-install-recommends", "nginx"); err != nil {
			return "", err
		}
	}
	p := look()
	if p == "" {
		return "", errors.New("apt-get installed nginx, but there is no nginx binary on PATH or in /usr/sbin")
	}
	if _, err := os.Stat("/run/nginx.pid"); err == nil && !wasRunning {
		_ = exec.Command(p, "-s", "stop").Run()
	}
	return p, nil
}

// apt runs apt-get with args, its output appended to apt.log.
func (b *bench) apt(ctx context.Context, args ...string) error {
	logPath := filepath.Join(b.tmp, "apt.log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("apt-get %s: %v; apt.log ends with:\n%s", strings.Join(args, " "), err, tail(logPath, 10))
	}
	return nil
}

// portkeyConfig is Portkey's routing config (header x-portkey-config): the
// two fake models as OpenAI-compatible targets, the second tried when the
// first fails.
func portkeyConfig(primary, lite string) string {
	type target struct {
		Provider   string `json:"provider"`
		CustomHost string `json:"custom_host"`
		APIKey     string `json:"api_key"`
	}
	cfg := struct {
		Strategy struct {
			Mode string `json:"mode"`
		} `json:"strategy"`
		Targets []target `json:"targets"`
	}{Targets: []target{{"openai", "http://" + primary + "/v1", "x"}, {"openai", "http://" + lite + "/v1", "x"}}}
	cfg.Strategy.Mode = "fallback"
	b, _ := json.Marshal(cfg)
	return string(b)
}

// startPortkey installs Portkey's AI gateway (@portkey-ai/gateway) from
// npm into a temp directory, runs it with node on a free port, and checks
// that a chat completion through it reaches the primary model. It returns
// the endpoint for chat completions with the fallback config.
func (b *bench) startPortkey(ctx context.Context, primary, lite string) (endpoint, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return endpoint{}, errors.New("node is not installed")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return endpoint{}, errors.New("npm is not installed")
	}
	dir := filepath.Join(b.tmp, "portkey")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return endpoint{}, err
	}
	b.logf("installing Portkey's gateway: npm install @portkey-ai/gateway (into %s)", dir)
	ictx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ictx, npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "@portkey-ai/gateway")
	cmd.Dir = dir
	// npm's children (install scripts) go with it when it is cancelled.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		return endpoint{}, fmt.Errorf("npm install @portkey-ai/gateway failed (%v): %s", err, lastLines(string(out), 8))
	}

	// Its package.json names the server's script as its bin; it takes
	// --port=N (default 8787) and --headless (no web console).
	pkgDir := filepath.Join(dir, "node_modules", "@portkey-ai", "gateway")
	raw, err := os.ReadFile(filepath.Join(pkgDir, "package.json"))
	if err != nil {
		return endpoint{}, fmt.Errorf("npm installed no @portkey-ai/gateway: %w", err)
	}
	var pkg struct {
		Version string          `json:"version"`
		Bin     json.RawMessage `json:"bin"`
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		return endpoint{}, fmt.Errorf("@portkey-ai/gateway's package.json: %w", err)
	}
	script := "build/start-server.js"
	var one string
	var many map[string]string
	if json.Unmarshal(pkg.Bin, &one) == nil && one != "" {
		script = one
	} else if json.Unmarshal(pkg.Bin, &many) == nil {
		for _, s := range many {
			script = s
			break
		}
	}
	b.rep.Versions["portkey"] = pkg.Version
	if out, err := exec.Command(node, "--version").Output(); err == nil {
		b.rep.Versions["node"] = strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	}

	addr, err := freeAddr()
	if err != nil {
		return endpoint{}, err
	}
	_, port, _ := net.SplitHostPort(addr)
	p, err := b.g.start("portkey", pkgDir, nil, node, filepath.Join(pkgDir, script), "--port="+port, "--headless")
	if err != nil {
		return endpoint{}, err
	}
	if err := waitHTTP(ctx, p, "http://"+addr+"/", 30*time.Second); err != nil {
		return endpoint{}, fmt.Errorf("Portkey's gateway did not start: %w", err)
	}
	e := endpoint{col: colPortkey, method: http.MethodPost, url: "http://" + addr + "/v1/chat/completions",
		body: []byte(chatRequest), pgid: p.pid(), header: http.Header{
			"Content-Type":     {"application/json"},
			"X-Portkey-Config": {portkeyConfig(primary, lite)},
		}}
	// One call: it must answer 200, from the first target (the primary).
	req, _ := http.NewRequestWithContext(ctx, e.method, e.url, strings.NewReader(chatRequest))
	req.Header = e.header.Clone()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return endpoint{}, fmt.Errorf("a chat completion through Portkey: %w", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return endpoint{}, fmt.Errorf("a chat completion through Portkey: %s %s", resp.Status, body)
	}
	if used := resp.Header.Get("X-Portkey-Last-Used-Option-Index"); used != "" && used != "config.targets[0]" {
		return endpoint{}, fmt.Errorf("a chat completion through Portkey was answered by %s, not the primary", used)
	}
	return e, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
