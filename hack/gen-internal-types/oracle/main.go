// Command oracle asks go-cmp itself: for every case in machinery/src/gocmp/testdata/cases.json
// (an old and a new v1 pod spec), it writes the cmp.Diff that upstream's API server would
// print for the two internal core.PodSpecs into the case's "want", the golden value the
// Rust emulation is tested against. The old spec goes through protobuf first, as the API
// server reads it from etcd; the new one is decoded from JSON, as a request body is.
// go-cmp's randomly chosen non-breaking spaces are written as plain spaces.
//
//	go run ./oracle ../../machinery/src/gocmp/testdata/cases.json
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/apis/core"
	corev1 "k8s.io/kubernetes/pkg/apis/core/v1"
)

type testCase struct {
	Name string          `json:"name"`
	Old  json.RawMessage `json:"old"`
	New  json.RawMessage `json:"new"`
	Want string          `json:"want"`
}

func internal(raw json.RawMessage, viaProtobuf bool) (core.PodSpec, error) {
	var spec v1.PodSpec
	var out core.PodSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return out, err
	}
	if viaProtobuf {
		b, err := spec.Marshal()
		if err != nil {
			return out, err
		}
		spec = v1.PodSpec{}
		if err := spec.Unmarshal(b); err != nil {
			return out, err
		}
	}
	err := corev1.Convert_v1_PodSpec_To_core_PodSpec(&spec, &out, nil)
	return out, err
}

func run(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var cases []testCase
	if err := json.Unmarshal(data, &cases); err != nil {
		return err
	}
	for i := range cases {
		c := &cases[i]
		old, err := internal(c.Old, true)
		if err != nil {
			return fmt.Errorf("%s: old: %w", c.Name, err)
		}
		updated, err := internal(c.New, false)
		if err != nil {
			return fmt.Errorf("%s: new: %w", c.Name, err)
		}
		c.Want = strings.ReplaceAll(cmp.Diff(old, updated), "\u00a0", " ")
		fmt.Fprintf(os.Stderr, "%s: %d lines\n", c.Name, strings.Count(c.Want, "\n"))
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(cases); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: oracle CASES.json")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
