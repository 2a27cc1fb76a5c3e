// Command record writes upstream v1.33's server-side printing as golden data for
// ironkube's printers:
//
//	go run . columns > ../columns.json   # column definitions per internal type
//	go run . < ../fixtures.json > ../cells.json
//
// Fixtures are decoded, defaulted and converted to the internal version as the API
// server does, then printed with Wide: true. Timestamps are shifted so that the
// fixture file's "now" is the real clock, then printing starts just after a second
// boundary so that whole-second ages come out exactly.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	_ "k8s.io/kubernetes/pkg/apis/admissionregistration/install"
	_ "k8s.io/kubernetes/pkg/apis/apps/install"
	_ "k8s.io/kubernetes/pkg/apis/autoscaling/install"
	_ "k8s.io/kubernetes/pkg/apis/batch/install"
	_ "k8s.io/kubernetes/pkg/apis/certificates/install"
	_ "k8s.io/kubernetes/pkg/apis/coordination/install"
	_ "k8s.io/kubernetes/pkg/apis/core/install"
	_ "k8s.io/kubernetes/pkg/apis/discovery/install"
	_ "k8s.io/kubernetes/pkg/apis/events/install"
	_ "k8s.io/kubernetes/pkg/apis/flowcontrol/install"
	_ "k8s.io/kubernetes/pkg/apis/networking/install"
	_ "k8s.io/kubernetes/pkg/apis/node/install"
	_ "k8s.io/kubernetes/pkg/apis/policy/install"
	_ "k8s.io/kubernetes/pkg/apis/rbac/install"
	_ "k8s.io/kubernetes/pkg/apis/scheduling/install"
	_ "k8s.io/kubernetes/pkg/apis/storage/install"
	"k8s.io/kubernetes/pkg/printers"
	printersinternal "k8s.io/kubernetes/pkg/printers/internalversion"
)

type capture map[string][]metav1.TableColumnDefinition

func (c capture) TableHandler(columns []metav1.TableColumnDefinition, printFunc interface{}) error {
	t := reflect.TypeOf(printFunc).In(0)
	if t.Elem().Kind() == reflect.Struct && len(t.Elem().Name()) > 4 && t.Elem().Name()[len(t.Elem().Name())-4:] == "List" {
		return nil
	}
	pkg := t.Elem().PkgPath()
	c[pkg[strings.LastIndex(pkg, "/")+1:]+"."+t.Elem().Name()] = columns
	return nil
}

type fixture struct {
	Name   string          `json:"name"`
	Object json.RawMessage `json:"object"`
}

type input struct {
	Now      string    `json:"now"`
	Fixtures []fixture `json:"fixtures"`
}

func shift(v interface{}, delta time.Duration) interface{} {
	switch x := v.(type) {
	case map[string]interface{}:
		for k, e := range x {
			x[k] = shift(e, delta)
		}
	case []interface{}:
		for i, e := range x {
			x[i] = shift(e, delta)
		}
	case string:
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil && len(x) >= 20 {
			t = t.Add(delta)
			if len(x) > 20 {
				return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
			}
			return t.UTC().Format(time.RFC3339)
		}
	}
	return v
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "columns" {
		c := capture{}
		printersinternal.AddHandlers(c)
		out, _ := marshal(c)
		os.Stdout.Write(out)
		return
	}
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		panic(err)
	}
	fixtureNow, err := time.Parse(time.RFC3339, in.Now)
	if err != nil {
		panic(err)
	}
	gen := printers.NewTableGenerator().With(printersinternal.AddHandlers)
	// Start just after a second boundary so whole-second offsets survive truncation.
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second + 5*time.Millisecond).Sub(now))
	realNow := time.Now().Truncate(time.Second)
	delta := realNow.Sub(fixtureNow)
	results := map[string]interface{}{}
	for _, f := range in.Fixtures {
		var raw interface{}
		if err := json.Unmarshal(f.Object, &raw); err != nil {
			panic(err)
		}
		shifted, _ := json.Marshal(shift(raw, delta))
		obj, gvk, err := legacyscheme.Codecs.UniversalDeserializer().Decode(shifted, nil, nil)
		if err != nil {
			panic(fmt.Sprintf("%s: %v", f.Name, err))
		}
		legacyscheme.Scheme.Default(obj)
		internal, err := legacyscheme.Scheme.ConvertToVersion(obj, schema.GroupVersion{Group: gvk.Group, Version: runtime.APIVersionInternal})
		if err != nil {
			panic(fmt.Sprintf("%s: %v", f.Name, err))
		}
		table, err := gen.GenerateTable(internal, printers.GenerateOptions{Wide: true})
		if err != nil {
			panic(fmt.Sprintf("%s: %v", f.Name, err))
		}
		if time.Since(realNow) > 900*time.Millisecond {
			panic("too slow: timestamps would round differently")
		}
		row := table.Rows[0]
		result := map[string]interface{}{"cells": row.Cells}
		if len(row.Conditions) > 0 {
			result["conditions"] = row.Conditions
		}
		results[f.Name] = result
	}
	out, _ := marshal(results)
	os.Stdout.Write(out)
}

// marshal writes indented JSON without HTML escaping, ending in a newline.
func marshal(v interface{}) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	err := enc.Encode(v)
	return b.Bytes(), err
}
