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

// load is Load with the environment read through getenv.
func load(paths []string, getenv func(string) string) (*Config, Diagnostics) {
	if len(paths) == 0 {
		return nil, Diagnostics{{Message: "no configuration given: pass a file or a directory of *.hcl files"}}
	}
	files, order, diags := expandPaths(paths)
	// complete stays true while every path was found and every file
	// parsed; validating an incomplete configuration would report values
	// as missing that are merely unreadable.
	complete := len(diags) == 0
	parser := hclparse.NewParser()
	w := newWalker(evalContext(getenv))
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			diags = append(diags, pathError(name, err))
			complete = false
			continue
		}
		f, hclDiags := parser.ParseHCL(src, name)
		if hclDiags.HasErrors() {
			diags = append(diags, fromHCL(hclDiags, "")...)
			complete = false
			continue
		}
		w.file(f)
	}
	diags = append(diags, w.diags...)

	if complete {
		fc, decodeDiags := w.decode()
		diags = append(diags, decodeDiags...)
		if fc != nil {
			fromEnv := applyDefaults(fc, getenv)
			diags = append(diags, validate(fc, positions{
				ranges:  w.ranges,
				bad:     w.bad,
				fromEnv: fromEnv,
				first:   files[0],
			})...)
			if len(diags) == 0 {
				cfg := resolve(fc)
				cfg.Sources = files
				return cfg, nil
			}
		}
	}
	sortDiagnostics(diags, order)
	return nil, diags
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
