package policies

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2/hclparse"
)

// Load reads configuration files and directories (a directory loads every
// *.hcl file in it in name order, not recursing into subdirectories),
// merges them, applies defaults and the environment, validates, and returns
// the resolved configuration.
//
// Blocks may be split across files, but each singleton block (agent,
// listen, consul, health, ingress, gateway) may appear once across all of
// them, and each notify, breaker, upstream and model label once. On failure
// Load returns a nil Config and a Diagnostics error listing every problem
// found, each with its file:line:col and key.
func Load(paths ...string) (*Config, error) {
	cfg, diags := load(paths, os.Getenv)
	if len(diags) > 0 {
		return nil, diags
	}
	return cfg, nil
}

// Source is configuration text that does not come from a local file: a
// fleet-wide policy read from Consul KV.
type Source struct {
	Name string // shown in errors and status, e.g. "consul:sidecar/policies/breakers.hcl"
	Data []byte
}

// LoadWithPolicies is Load with fleet-wide policies layered below the
// files: fleet policies (lowest), then per-service policies, then the
// files, which win as an operator's override. A policy may hold only
// breaker, upstream, model and notify blocks; a block in a higher layer
// replaces the block with the same label in a lower one (as a whole), while
// the same label twice within one layer is an error.
func LoadWithPolicies(fleet, service []Source, paths ...string) (*Config, error) {
	cfg, diags := loadLayers([][]Source{fleet, service}, paths, os.Getenv)
	if len(diags) > 0 {
		return nil, diags
	}
	return cfg, nil
}

// ValidatePolicies checks policy files as a fleet would load them: only
// policy blocks, every reference resolved among them and the defaults.
func ValidatePolicies(policies []Source) error {
	stub := filepath.Join(os.TempDir(), "policy-check.hcl")
	_, diags := loadLayers([][]Source{policies}, nil, os.Getenv, Source{Name: stub, Data: []byte("agent {\n  name = \"policy-check\"\n}\n")})
	if len(diags) > 0 {
		return diags
	}
	return nil
}

// load is Load with the environment read through getenv.
func load(paths []string, getenv func(string) string) (*Config, Diagnostics) {
	if len(paths) == 0 {
		return nil, Diagnostics{{Message: "no configuration given: pass a file or a directory of *.hcl files"}}
	}
	return loadLayers(nil, paths, getenv)
}

// loadLayers loads policy layers (lowest first), then the files of paths
// and extra sources as the top layer.
func loadLayers(policyLayers [][]Source, paths []string, getenv func(string) string, extra ...Source) (*Config, Diagnostics) {
	var files, order []string
	var diags Diagnostics
	if len(paths) > 0 {
		files, order, diags = expandPaths(paths)
	}
	// complete stays true while every path was found and every file
	// parsed; validating an incomplete configuration would report values
	// as missing that are merely unreadable.
	complete := len(diags) == 0
	parser := hclparse.NewParser()
	w := newWalker(nil)
	add := func(name string, src []byte) {
		if d := checkSource(name, src); len(d) > 0 {
			diags = append(diags, d...)
			complete = false
			return
		}
		f, hclDiags := parser.ParseHCL(src, name)
		if hclDiags.HasErrors() {
			diags = append(diags, fromHCL(hclDiags, "")...)
			complete = false
			return
		}
		w.file(f)
	}
	var sources []string
	// Policies from Consul KV are evaluated without the environment.
	w.ctx = policyEvalContext()
	for i, layer := range policyLayers {
		w.layer, w.policyOnly = i, true
		for _, src := range layer {
			sources = append(sources, src.Name)
			add(src.Name, src.Data)
		}
	}
	w.layer, w.policyOnly = len(policyLayers), false
	w.ctx = evalContext(getenv)
	for _, name := range files {
		src, oversize, err := readSource(name)
		switch {
		case err != nil:
			diags = append(diags, pathError(name, err))
			complete = false
			continue
		case oversize != nil:
			diags = append(diags, *oversize)
			complete = false
			continue
		}
		add(name, src)
	}
	for _, src := range extra {
		files = append(files, src.Name)
		add(src.Name, src.Data)
	}
	order = append(append(append([]string(nil), sources...), order...), extraNames(extra)...)
	diags = append(diags, w.diags...)

	if complete && len(files) > 0 {
		fc, decodeDiags := w.decode()
		diags = append(diags, decodeDiags...)
		if fc != nil {
			fromEnv := applyDefaults(fc, getenv)
			diags = append(diags, validate(fc, positions{
				ranges:  w.ranges,
				bad:     w.bad,
				fromEnv: fromEnv,
				first:   files[0],
				policy:  w.policyBlocks(len(policyLayers)),
			})...)
			if len(diags) == 0 {
				cfg := resolve(fc)
				cfg.Sources = append(sources, files...)
				return cfg, nil
			}
		}
	}
	sortDiagnostics(diags, order)
	return nil, capDiagnostics(diags)
}

func extraNames(srcs []Source) []string {
	names := make([]string, len(srcs))
	for i, s := range srcs {
		names[i] = s.Name
	}
	return names
}

// expandPaths turns the paths given to Load into the list of files to read,
// in load order. order is files with the paths that could not be expanded
// in their place, for sorting diagnostics.
func expandPaths(paths []string) (files, order []string, diags Diagnostics) {
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			diags = append(diags, pathError(p, err))
			order = append(order, p)
			continue
		}
		if !info.IsDir() {
			files = append(files, p)
			order = append(order, p)
			continue
		}
		entries, err := os.ReadDir(p) // sorted by name
		if err != nil {
			diags = append(diags, pathError(p, err))
			order = append(order, p)
			continue
		}
		found := 0
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".hcl") {
				continue
			}
			name := filepath.Join(p, e.Name())
			st, err := os.Stat(name) // follows symlinks
			if err != nil {
				diags = append(diags, pathError(name, err))
				order = append(order, name)
				continue
			}
			if st.IsDir() {
				continue
			}
			files = append(files, name)
			order = append(order, name)
			found++
		}
		if found == 0 {
			diags = append(diags, Diagnostic{File: p, Message: "directory contains no *.hcl files"})
			order = append(order, p)
		}
	}
	return files, order, diags
}

// pathError describes a path that cannot be read, without repeating the
// path (the diagnostic names it).
func pathError(path string, err error) Diagnostic {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	msg := "cannot read: " + err.Error()
	if errors.Is(err, fs.ErrNotExist) {
		msg = "no such file or directory"
	}
	return Diagnostic{File: path, Message: msg}
}
