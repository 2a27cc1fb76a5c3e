// Command gen-internal-types writes machinery/src/gocmp/generated.rs: every type reachable
// from upstream's internal (unversioned) core.PodSpec, as Go's reflect package sees it
// (kind, printed name, element and key types, struct fields in declaration order, whether
// an Equal method decides equality), plus, for each struct field, the JSON name the same
// field has in the v1 API. The API server's forbidden-pod-update message prints a
// go-cmp diff of two internal PodSpecs; ironkube's emulation of that diff
// (machinery/src/gocmp) walks values of these types.
//
//	go run . -out ../../machinery/src/gocmp/generated.rs
//	go run . -check ../../machinery/src/gocmp/generated.rs
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/apis/core"
)

const corePkg = "k8s.io/kubernetes/pkg/apis/core"

var (
	unmarshaler = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	stringer    = reflect.TypeOf((*fmt.Stringer)(nil)).Elem()
	errorType   = reflect.TypeOf((*error)(nil)).Elem()
)

// stringMethod is go-cmp's prefix for a value it prints through a method: "e" for an
// error, "s" for a fmt.Stringer (of the value's own method set), "" otherwise.
func stringMethod(t reflect.Type) string {
	switch {
	case t.Implements(errorType):
		return "e"
	case t.Implements(stringer):
		return "s"
	}
	return ""
}

// opaque reports whether go-cmp treats t as a leaf without looking inside: it has an
// Equal method, or it is a struct with its own JSON form and unexported fields.
func opaque(t reflect.Type) bool {
	if hasEqualMethod(t) {
		return true
	}
	if codec(t) == "" || t.Kind() != reflect.Struct {
		return false
	}
	for f := range t.Fields() {
		if !f.IsExported() {
			return true
		}
	}
	return false
}

type generator struct {
	order []reflect.Type
	index map[reflect.Type]int
	// v1 counterparts of internal core types, by type name.
	versioned map[string]reflect.Type
}

// hasEqualMethod reports whether go-cmp compares t with its Equal method: a method
// Equal whose signature is func(T, I) bool with T assignable to I.
func hasEqualMethod(t reflect.Type) bool {
	m, ok := t.MethodByName("Equal")
	if !ok {
		return false
	}
	ft := m.Type
	return ft.NumIn() == 2 && ft.NumOut() == 1 && ft.In(0).AssignableTo(ft.In(1)) &&
		ft.Out(0).Kind() == reflect.Bool
}

// codec names a type whose JSON form is its own (a json.Unmarshaler), or "".
func codec(t reflect.Type) string {
	if t.Kind() == reflect.Struct && reflect.PointerTo(t).Implements(unmarshaler) {
		return t.String()
	}
	return ""
}

func (g *generator) visit(t reflect.Type) int {
	if i, ok := g.index[t]; ok {
		return i
	}
	i := len(g.order)
	g.index[t] = i
	g.order = append(g.order, t)
	switch t.Kind() {
	case reflect.Struct:
		if !opaque(t) {
			for f := range t.Fields() {
				g.visit(f.Type)
			}
		}
	case reflect.Slice, reflect.Array, reflect.Pointer:
		g.visit(t.Elem())
	case reflect.Map:
		g.visit(t.Key())
		g.visit(t.Elem())
	}
	return i
}

// indexVersioned records every named struct reachable from t by name.
func (g *generator) indexVersioned(t reflect.Type) {
	switch t.Kind() {
	case reflect.Struct:
		if _, seen := g.versioned[t.Name()]; seen && t.Name() != "" {
			return
		}
		if t.Name() != "" {
			g.versioned[t.Name()] = t
		}
		for f := range t.Fields() {
			g.indexVersioned(f.Type)
		}
	case reflect.Slice, reflect.Array, reflect.Pointer, reflect.Map:
		g.indexVersioned(t.Elem())
	}
}

func lowerCamel(s string) string {
	// "HostPID" -> "hostPID", "DNSPolicy" -> "dnsPolicy"
	n := 0
	for n < len(s) && s[n] >= 'A' && s[n] <= 'Z' {
		n++
	}
	switch {
	case n == 0:
		return s
	case n == 1 || n == len(s):
		return strings.ToLower(s[:n]) + s[n:]
	default:
		return strings.ToLower(s[:n-1]) + s[n-1:]
	}
}

// jsonName is the v1 JSON name of field f of internal struct t, and whether it is inlined.
func (g *generator) jsonName(t reflect.Type, f reflect.StructField) (string, bool, bool) {
	tagged := f
	found := true
	if t.PkgPath() == corePkg {
		found = false
		if vt, ok := g.versioned[t.Name()]; ok {
			if vf, ok := vt.FieldByName(f.Name); ok {
				tagged, found = vf, true
			}
		}
	}
	tag := tagged.Tag.Get("json")
	if !found || tag == "" {
		return lowerCamel(f.Name), f.Anonymous, found
	}
	name, opts, _ := strings.Cut(tag, ",")
	inline := strings.Contains(opts, "inline")
	if name == "" && !inline {
		name = f.Name
	}
	return name, inline, true
}

func kind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "Bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "Int"
	case reflect.Uint8:
		return "Uint8"
	case reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "Uint"
	case reflect.Float32, reflect.Float64:
		return "Float"
	case reflect.String:
		return "String"
	case reflect.Struct:
		return "Struct"
	case reflect.Slice:
		return "Slice"
	case reflect.Array:
		return "Array"
	case reflect.Map:
		return "Map"
	case reflect.Pointer:
		return "Ptr"
	case reflect.Interface:
		return "Interface"
	}
	panic(fmt.Sprintf("unhandled kind %v of %v", t.Kind(), t))
}

func (g *generator) write() []byte {
	var b bytes.Buffer
	fmt.Fprintln(&b, "// @generated by hack/gen-internal-types from k8s.io/kubernetes v1.33 (internal core types); do not edit.")
	fmt.Fprintln(&b, "")
	fmt.Fprintln(&b, "use super::types::{GoField, GoKind, GoType};")
	fmt.Fprintln(&b, "")
	fmt.Fprintln(&b, "/// Index of core.PodSpec in TYPES.")
	fmt.Fprintln(&b, "pub const POD_SPEC: usize = 0;")
	fmt.Fprintln(&b, "")
	fmt.Fprintln(&b, "pub static TYPES: &[GoType] = &[")
	var unmatched []string
	for i, t := range g.order {
		elem, key := 0, 0
		switch t.Kind() {
		case reflect.Slice, reflect.Array, reflect.Pointer:
			elem = g.index[t.Elem()]
		case reflect.Map:
			elem, key = g.index[t.Elem()], g.index[t.Key()]
		}
		fmt.Fprintf(&b, "    // %d\n", i)
		fmt.Fprintf(&b, "    GoType {\n        name: %q,\n        named: %v,\n        kind: GoKind::%s,\n        elem: %d,\n        key: %d,\n        equal_method: %v,\n        codec: %q,\n        string_method: %q,\n",
			t.String(), t.Name() != "", kind(t), elem, key, hasEqualMethod(t), codec(t), stringMethod(t))
		if t.Kind() == reflect.Struct && !opaque(t) {
			fmt.Fprintln(&b, "        fields: &[")
			for f := range t.Fields() {
				name, inline, found := g.jsonName(t, f)
				if !found {
					unmatched = append(unmatched, t.String()+"."+f.Name+" -> "+name)
				}
				fmt.Fprintf(&b, "            GoField { name: %q, ty: %d, json: %q, inline: %v },\n",
					f.Name, g.index[f.Type], name, inline)
			}
			fmt.Fprintln(&b, "        ],")
		} else {
			fmt.Fprintln(&b, "        fields: &[],")
		}
		fmt.Fprintln(&b, "    },")
	}
	fmt.Fprintln(&b, "];")
	for _, u := range unmatched {
		fmt.Fprintf(os.Stderr, "no v1 field for %s (JSON name guessed)\n", u)
	}
	return b.Bytes()
}

func main() {
	out := flag.String("out", "", "write the table to this file")
	check := flag.String("check", "", "fail if this file differs from the table")
	flag.Parse()

	g := &generator{index: map[reflect.Type]int{}, versioned: map[string]reflect.Type{}}
	g.indexVersioned(reflect.TypeOf(v1.PodSpec{}))
	g.visit(reflect.TypeOf(core.PodSpec{}))
	text := g.write()
	switch {
	case *out != "":
		if err := os.WriteFile(*out, text, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case *check != "":
		old, err := os.ReadFile(*check)
		if err != nil || !bytes.Equal(old, text) {
			fmt.Fprintf(os.Stderr, "%s is out of date: run hack/gen-internal-types\n", *check)
			os.Exit(1)
		}
	default:
		os.Stdout.Write(text)
	}
}
