// Command gen-api-schema writes machinery/src/schema/generated.rs: the facts about the
// Kubernetes v1.33 built-in API types that the Rust types of k8s-openapi do not carry and
// that ironkube needs at run time (OpenAPI extensions and defaults, strategic merge patch
// strategies and merge keys, list and map types for server-side apply, enum values, the
// root type of every group-version-kind).
//
// It reads the v1.33 Go types twice: by reflection (field names, JSON tags, shapes,
// registered kinds) and as source from the Go module cache (the `// +marker` comments:
// listType, listMapKey, mapType, structType, patchStrategy, patchMergeKey, default, enum,
// optional/required, union). Run it through ../gen-api-schema/gen.sh.
//
//	go run . -out ../../machinery/src/schema/generated.rs
//	go run . -check ../../machinery/src/schema/generated.rs
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	corev1 "k8s.io/api/core/v1"
	imagepolicyv1alpha1 "k8s.io/api/imagepolicy/v1alpha1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsv1beta1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes/scheme"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	apiregistrationv1beta1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1beta1"
)

// ---------------------------------------------------------------------------
// Source comments

type constFact struct {
	typeName string // named type of the constant, in the same package; "" if untyped
	expr     ast.Expr
	comments []string
	imports  map[string]string // the declaring file's imports: name -> path
	pkgPath  string
}

// aliasFact is `type A = pkg.T`: Kubernetes' generators let the alias's comments stand
// for T's (so its markers replace T's), and count constants of type A as T's.
type aliasFact struct {
	pkgPath, name         string
	targetPkg, targetName string
	comments              []string
}

type pkgSource struct {
	types   map[string][]string            // type name -> doc comment lines
	fields  map[string]map[string][]string // type name -> Go field name -> doc comment lines
	consts  map[string]*constFact
	order   []string // constant names in source order
	aliases []aliasFact
}

var sources = map[string]*pkgSource{}

func commentLines(groups ...*ast.CommentGroup) []string {
	for _, g := range groups {
		if g != nil {
			return strings.Split(strings.TrimRight(g.Text(), "\n"), "\n")
		}
	}
	return nil
}

var pkgDirs = map[string]string{}

func pkgDir(pkgPath string) string {
	if d, ok := pkgDirs[pkgPath]; ok {
		return d
	}
	out, err := exec.Command("go", "list", "-find", "-f", "{{.Dir}}", pkgPath).Output()
	if err != nil {
		fatalf("go list %s: %v", pkgPath, err)
	}
	pkgDirs[pkgPath] = strings.TrimSpace(string(out))
	return pkgDirs[pkgPath]
}

func fileImports(f *ast.File) map[string]string {
	out := map[string]string{}
	for _, im := range f.Imports {
		path, _ := strconv.Unquote(im.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if im.Name != nil {
			name = im.Name.Name
		}
		out[name] = path
	}
	return out
}

func source(pkgPath string) *pkgSource {
	if s, ok := sources[pkgPath]; ok {
		return s
	}
	s := &pkgSource{types: map[string][]string{}, fields: map[string]map[string][]string{}, consts: map[string]*constFact{}}
	sources[pkgPath] = s
	dir := pkgDir(pkgPath)
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		fatalf("%v", err)
	}
	sort.Strings(files)
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
		if err != nil {
			fatalf("%v", err)
		}
		imports := fileImports(f)
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, spec := range gd.Specs {
				switch sp := spec.(type) {
				case *ast.TypeSpec:
					var doc []string
					if len(gd.Specs) == 1 {
						doc = commentLines(sp.Doc, gd.Doc)
					} else {
						doc = commentLines(sp.Doc)
					}
					if sp.Assign.IsValid() {
						if sel, ok := sp.Type.(*ast.SelectorExpr); ok {
							if x, ok := sel.X.(*ast.Ident); ok && imports[x.Name] != "" {
								s.aliases = append(s.aliases, aliasFact{pkgPath, sp.Name.Name, imports[x.Name], sel.Sel.Name, doc})
							}
						}
						continue
					}
					s.types[sp.Name.Name] = doc
					if st, ok := sp.Type.(*ast.StructType); ok {
						fm := map[string][]string{}
						for _, fld := range st.Fields.List {
							doc := commentLines(fld.Doc)
							if len(fld.Names) == 0 {
								fm[embeddedName(fld.Type)] = doc
							}
							for _, n := range fld.Names {
								fm[n.Name] = doc
							}
						}
						s.fields[sp.Name.Name] = fm
					}
				case *ast.ValueSpec:
					if gd.Tok != token.CONST {
						continue
					}
					var doc []string
					if len(gd.Specs) == 1 {
						doc = commentLines(sp.Doc, gd.Doc)
					} else {
						doc = commentLines(sp.Doc)
					}
					typeName := ""
					if id, ok := sp.Type.(*ast.Ident); ok {
						typeName = id.Name
					}
					for i, n := range sp.Names {
						c := &constFact{typeName: typeName, comments: doc, imports: imports, pkgPath: pkgPath}
						if i < len(sp.Values) {
							c.expr = sp.Values[i]
							if call, ok := c.expr.(*ast.CallExpr); ok && typeName == "" {
								if id, ok := call.Fun.(*ast.Ident); ok {
									c.typeName = id.Name
								}
							}
						}
						s.consts[n.Name] = c
						s.order = append(s.order, n.Name)
					}
				}
			}
		}
	}
	return s
}

// constValue evaluates a string constant: a literal, another constant (here or in an
// imported package) or a conversion of one.
func constValue(c *constFact, depth int) string {
	if depth > 8 || c.expr == nil {
		return ""
	}
	switch v := c.expr.(type) {
	case *ast.BasicLit:
		if v.Kind == token.STRING {
			out, _ := strconv.Unquote(v.Value)
			return out
		}
		return v.Value
	case *ast.Ident:
		if r, ok := source(c.pkgPath).consts[v.Name]; ok {
			return constValue(r, depth+1)
		}
	case *ast.SelectorExpr:
		if x, ok := v.X.(*ast.Ident); ok && c.imports[x.Name] != "" {
			if r, ok := source(c.imports[x.Name]).consts[v.Sel.Name]; ok {
				return constValue(r, depth+1)
			}
		}
	case *ast.CallExpr:
		if len(v.Args) == 1 {
			inner := *c
			inner.expr = v.Args[0]
			return constValue(&inner, depth+1)
		}
	}
	return ""
}

// aliasesOf lists the aliases of pkgPath.name across the parsed packages, in package order.
func aliasesOf(pkgPath, name string) []aliasFact {
	var paths []string
	for p := range sources {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var out []aliasFact
	for _, p := range paths {
		for _, a := range sources[p].aliases {
			if a.targetPkg == pkgPath && a.targetName == name {
				out = append(out, a)
			}
		}
	}
	return out
}

func embeddedName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.Ident:
		return t.Name
	case *ast.StarExpr:
		return embeddedName(t.X)
	case *ast.SelectorExpr:
		return t.Sel.Name
	}
	return ""
}

// tags extracts `+name=value` markers the way Kubernetes' code generators read them.
func tags(lines []string) map[string][]string {
	out := map[string][]string{}
	for _, l := range lines {
		l = strings.Trim(l, " ")
		if !strings.HasPrefix(l, "+") {
			continue
		}
		kv := strings.SplitN(l[1:], "=", 2)
		if len(kv) == 2 {
			out[kv[0]] = append(out[kv[0]], kv[1])
		} else {
			out[kv[0]] = append(out[kv[0]], "")
		}
	}
	return out
}

func typeComments(t reflect.Type) []string {
	if t.Name() == "" || t.PkgPath() == "" {
		return nil
	}
	if as := aliasesOf(t.PkgPath(), t.Name()); len(as) > 0 {
		return as[len(as)-1].comments
	}
	return source(t.PkgPath()).types[t.Name()]
}

// ---------------------------------------------------------------------------
// Facts

type extension struct {
	name   string
	values []string
	array  bool
}

type fieldFact struct {
	name         string
	shape        string
	elem         string
	elemShape    string
	extensions   []extension
	def          string   // JSON, or ""
	itemDefaults []string // JSON per nesting level of items/additionalProperties, "" for none
	enum         string
	enumLevel    int // 0: the field itself, n: the n-th level of items/additionalProperties
	required     bool
	zero         string // JSON the field takes in its struct's Go zero value, or "" when omitted
	goType       string // goDesc of the field's type
}

// goDesc describes a Go type the way encoding/json errors name it, with the kind of the
// innermost value: "map[string]string=string", "[]v1.Container=struct", "v1.Time=custom"
// (a type with its own UnmarshalJSON), "[]uint8=bytes". Pointers are dereferenced, as the
// decoder does before storing a value.
func goDesc(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case isBytes(t):
		return "[]uint8=bytes"
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		return "[]" + goDesc(t.Elem())
	case t.Kind() == reflect.Map:
		return "map[" + t.Key().String() + "]" + goDesc(t.Elem())
	}
	kind := t.Kind().String()
	if t.Implements(unmarshaler) || reflect.PointerTo(t).Implements(unmarshaler) {
		kind = "custom"
	}
	return t.String() + "=" + kind
}

// zeroOf is the JSON a zero field of type t takes in encoding/json's output: nothing when
// omitempty omits it, "{}" for plain structs (their own zero fields follow), and
// json.Marshal of the zero value otherwise. Nil pointers, slices and maps (null) are
// left out: they are the required fields validation guarantees.
func zeroOf(t reflect.Type, omitempty bool) string {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface, reflect.Array:
		return ""
	case reflect.Struct:
		if customJSON(t) {
			b, err := json.Marshal(reflect.New(t).Interface())
			if err != nil {
				fatalf("zero of %v: %v", t, err)
			}
			return string(b)
		}
		return "{}"
	default:
		if omitempty {
			return ""
		}
		b, err := json.Marshal(reflect.Zero(t).Interface())
		if err != nil {
			fatalf("zero of %v: %v", t, err)
		}
		return string(b)
	}
}

type union struct {
	discriminator string
	fields        [][2]string // json name, Go name
}

type typeFact struct {
	name       string
	required   []string // in Go field order
	opaque     bool
	extensions []extension
	unions     []union
	fields     []*fieldFact
}

type enumFact struct {
	name   string
	values [][2]string // value, description line
}

var (
	typeFacts = map[string]*typeFact{}
	enumFacts = map[string]*enumFact{}
)

// openAPIName turns a Go package path and type name into the name Kubernetes publishes,
// e.g. k8s.io/api/core/v1.PodSpec -> io.k8s.api.core.v1.PodSpec.
func openAPIName(t reflect.Type) string {
	parts := strings.Split(t.PkgPath(), "/")
	host := strings.Split(parts[0], ".")
	for i, j := 0, len(host)-1; i < j; i, j = i+1, j-1 {
		host[i], host[j] = host[j], host[i]
	}
	return strings.Join(append(host, parts[1:]...), ".") + "." + t.Name()
}

var unmarshaler = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()

func customJSON(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && reflect.PointerTo(t).Implements(unmarshaler)
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func isBytes(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8
}

// shape classifies a Go type as the schema sees it and names the struct type it leads to.
func shape(t reflect.Type) (string, string) {
	t = deref(t)
	switch {
	case t.Kind() == reflect.Struct && customJSON(t):
		return "Opaque", openAPIName(t)
	case t.Kind() == reflect.Struct:
		return "Struct", openAPIName(t)
	case isBytes(t):
		return "Scalar", ""
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		_, elem := shape(t.Elem())
		return "List", elem
	case t.Kind() == reflect.Map:
		_, elem := shape(t.Elem())
		return "Map", elem
	case t.Kind() == reflect.Interface:
		return "Opaque", ""
	}
	return "Scalar", ""
}

func isEnum(t reflect.Type) bool {
	t = deref(t)
	if t.Kind() != reflect.String || t.Name() == "" || t.PkgPath() == "" {
		return false
	}
	_, ok := tags(typeComments(t))["enum"]
	return ok
}

var spaces = regexp.MustCompile(`\s+`)

func enumName(t reflect.Type) string {
	t = deref(t)
	name := openAPIName(t)
	if _, ok := enumFacts[name]; ok {
		return name
	}
	type candidate struct{ name, value, comment string }
	var cands []candidate
	addFrom := func(pkgPath, typeName string) {
		src := source(pkgPath)
		for _, cn := range src.order {
			if c := src.consts[cn]; c.typeName == typeName {
				cands = append(cands, candidate{cn, constValue(c, 0), strings.Join(c.comments, " ")})
			}
		}
	}
	addFrom(t.PkgPath(), t.Name())
	for _, a := range aliasesOf(t.PkgPath(), t.Name()) {
		addFrom(a.pkgPath, a.name)
	}
	// One description per value: the longest comment wins (the smaller text on a tie).
	var kept []candidate
	for _, c := range cands {
		replaced := false
		for i, k := range kept {
			if k.value == c.value {
				if len(k.comment) < len(c.comment) || (len(k.comment) == len(c.comment) && k.comment > c.comment) {
					kept[i] = c
				}
				replaced = true
				break
			}
		}
		if !replaced {
			kept = append(kept, c)
		}
	}
	e := &enumFact{name: name}
	for _, c := range kept {
		comment := strings.TrimSpace(c.comment)
		comment = strings.TrimSpace(strings.TrimPrefix(comment, c.name))
		comment = spaces.ReplaceAllString(comment, " ")
		line := strings.TrimRight(fmt.Sprintf(" - `%q` %s", c.value, comment), " ")
		e.values = append(e.values, [2]string{c.value, line})
	}
	sort.Slice(e.values, func(i, j int) bool { return strconv.Quote(e.values[i][0]) < strconv.Quote(e.values[j][0]) })
	enumFacts[name] = e
	return name
}

// defaultFromComments reads `+default=` from the member's comments, else from its type's.
func defaultFromComments(comments []string, pkgPath string, t reflect.Type) (any, bool) {
	for {
		if v, ok := tags(comments)["default"]; ok {
			if len(v) != 1 {
				fatalf("more than one default in %v", comments)
			}
			if m := regexp.MustCompile(`^ref\(([^"]+)\)$`).FindStringSubmatch(v[0]); m != nil {
				name := m[1]
				if i := strings.LastIndex(name, "."); i >= 0 {
					pkgPath, name = name[:i], name[i+1:]
				}
				c, ok := source(pkgPath).consts[name]
				if !ok {
					fatalf("default ref(%s) not found in %s", m[1], pkgPath)
				}
				return constValue(c, 0), true
			}
			var out any
			if err := json.Unmarshal([]byte(v[0]), &out); err != nil {
				fatalf("default %q: %v", v[0], err)
			}
			return out, true
		}
		if t == nil {
			return nil, false
		}
		comments, pkgPath = typeComments(t), t.PkgPath()
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		} else {
			t = nil
		}
	}
}

// enforcedDefault is the zero value every non-pointer, non-omitempty field holds.
func enforcedDefault(t reflect.Type, omitEmpty bool) any {
	if t.Kind() == reflect.Pointer && customJSON(t.Elem()) {
		return nil
	}
	if customJSON(t) {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Array, reflect.Interface:
		return nil
	case reflect.Struct:
		if t.NumField() == 1 && t.Field(0).Anonymous {
			return enforcedDefault(t.Field(0).Type, omitEmpty)
		}
		return map[string]any{}
	case reflect.String:
		if !omitEmpty {
			return ""
		}
	case reflect.Bool:
		if !omitEmpty {
			return false
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if !omitEmpty {
			return 0
		}
	}
	return nil
}

func defaultOf(comments []string, pkgPath string, t reflect.Type, omitEmpty bool, where string) string {
	def, _ := defaultFromComments(comments, pkgPath, t)
	if enforced := enforcedDefault(t, omitEmpty); enforced != nil {
		if def == nil {
			def = enforced
		} else if !reflect.DeepEqual(normalize(def), normalize(enforced)) {
			fatalf("%s: default %v differs from the zero value %v", where, def, enforced)
		}
	}
	if def == nil {
		return ""
	}
	b, err := json.Marshal(def)
	if err != nil {
		fatalf("%v", err)
	}
	return string(b)
}

func normalize(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

// itemDefaults follows slices and maps down, the way upstream's generator writes defaults
// on each level of items and additionalProperties.
func itemDefaults(t reflect.Type) []string {
	var out []string
	t = deref(t)
	for (t.Kind() == reflect.Slice && !isBytes(t)) || t.Kind() == reflect.Map || t.Kind() == reflect.Array {
		elem := t.Elem()
		out = append(out, defaultOf(typeComments(elem), elem.PkgPath(), elem, false, t.String()))
		t = deref(elem)
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

var extensionTags = []struct {
	tag, name string
	array     bool
}{
	{"listMapKey", "x-kubernetes-list-map-keys", true},
	{"listType", "x-kubernetes-list-type", false},
	{"mapType", "x-kubernetes-map-type", false},
	{"patchMergeKey", "x-kubernetes-patch-merge-key", false},
	{"patchStrategy", "x-kubernetes-patch-strategy", false},
	{"structType", "x-kubernetes-map-type", false},
	{"validations", "x-kubernetes-validations", false},
}

func extensionsOf(comments []string) []extension {
	var out []extension
	tv := tags(comments)
	for _, v := range tv["k8s:openapi-gen"] {
		if strings.HasPrefix(v, "x-kubernetes-") {
			kv := strings.SplitN(v, ":", 2)
			if len(kv) == 2 {
				out = append(out, extension{name: kv[0], values: []string{kv[1]}})
			}
		}
	}
	for _, et := range extensionTags {
		if v, ok := tv[et.tag]; ok {
			out = append(out, extension{name: et.name, values: v, array: et.array || len(v) > 1})
		}
	}
	return out
}

func jsonTag(f reflect.StructField) (string, []string) {
	tag, ok := f.Tag.Lookup("json")
	if !ok || tag == "" {
		return f.Name, nil
	}
	parts := strings.Split(tag, ",")
	return parts[0], parts[1:]
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func walk(t reflect.Type) {
	t = deref(t)
	switch t.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		walk(t.Elem())
		return
	case reflect.Struct:
	default:
		return
	}
	if t.Name() == "" || !strings.Contains(t.PkgPath(), ".") {
		return
	}
	name := openAPIName(t)
	if _, ok := typeFacts[name]; ok {
		return
	}
	tf := &typeFact{name: name, opaque: customJSON(t)}
	typeFacts[name] = tf
	if tf.opaque {
		return
	}
	tf.extensions = extensionsOf(typeComments(t))
	tf.unions = unionsOf(t)
	members(t, tf)
	sort.Slice(tf.fields, func(i, j int) bool { return tf.fields[i].name < tf.fields[j].name })
}

func members(t reflect.Type, tf *typeFact) {
	docs := source(t.PkgPath()).fields[t.Name()]
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		comments := docs[f.Name]
		if has(tags(comments)["k8s:openapi-gen"], "false") {
			continue
		}
		name, opts := jsonTag(f)
		if has(opts, "inline") {
			members(deref(f.Type), tf)
			walk(f.Type)
			continue
		}
		if name == "-" {
			continue
		}
		walk(f.Type)
		ff := &fieldFact{name: name, extensions: extensionsOf(comments)}
		tv := tags(comments)
		if _, ok := tv["required"]; ok {
			ff.required = true
		} else if _, ok := tv["optional"]; !ok {
			ff.required = !has(opts, "omitempty")
		}
		if ff.required {
			tf.required = append(tf.required, name)
		}
		if !has(opts, "string") {
			ff.zero = zeroOf(f.Type, has(opts, "omitempty"))
			ff.goType = goDesc(f.Type)
		}
		if has(opts, "string") {
			ff.shape = "Scalar"
			tf.fields = append(tf.fields, ff)
			continue
		}
		ff.shape, ff.elem = shape(f.Type)
		where := tf.name + "." + name
		ff.def = defaultOf(comments, t.PkgPath(), f.Type, has(opts, "omitempty"), where)
		ft := deref(f.Type)
		if ff.shape == "List" || ff.shape == "Map" {
			ff.elemShape, _ = shape(ft.Elem())
			ff.itemDefaults = itemDefaults(f.Type)
		}
		if isEnum(f.Type) {
			ff.enum = enumName(f.Type)
		} else {
			level := 0
			for e := ft; (e.Kind() == reflect.Slice && !isBytes(e)) || e.Kind() == reflect.Map; e = deref(e.Elem()) {
				level++
				if isEnum(e.Elem()) {
					ff.enum, ff.enumLevel = enumName(e.Elem()), level
					break
				}
			}
		}
		tf.fields = append(tf.fields, ff)
	}
}

func unionsOf(t reflect.Type) []union {
	var out []union
	docs := source(t.PkgPath()).fields[t.Name()]
	if _, ok := tags(typeComments(t))["union"]; ok {
		u := union{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, opts := jsonTag(f)
			if name == "-" || has(opts, "inline") {
				continue
			}
			if _, ok := tags(docs[f.Name])["unionDiscriminator"]; ok {
				u.discriminator = name
			} else {
				u.fields = append(u.fields, [2]string{name, f.Name})
			}
		}
		out = append(out, u)
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if _, opts := jsonTag(f); has(opts, "inline") && deref(f.Type).Kind() == reflect.Struct {
			out = append(out, unionsOf(deref(f.Type))...)
		}
	}
	u := union{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts := jsonTag(f)
		if name == "-" || has(opts, "inline") {
			continue
		}
		tv := tags(docs[f.Name])
		if _, ok := tv["unionDiscriminator"]; ok {
			u.discriminator = name
		}
		if _, ok := tv["unionDeprecated"]; ok {
			u.fields = append(u.fields, [2]string{name, f.Name})
		}
	}
	if len(u.fields) > 0 {
		out = append(out, u)
	}
	for i := range out {
		sort.Slice(out[i].fields, func(a, b int) bool { return out[i].fields[a][0] < out[i].fields[b][0] })
	}
	return out
}

// ---------------------------------------------------------------------------
// Output

func rustStr(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\u{%x}`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

func optStr(s string) string {
	if s == "" {
		return "None"
	}
	return "Some(" + rustStr(s) + ")"
}

func strList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = rustStr(s)
	}
	return "&[" + strings.Join(q, ", ") + "]"
}

func extValue(list []extension, name string) (extension, bool) {
	for _, e := range list {
		if e.name == name {
			return e, true
		}
	}
	return extension{}, false
}

func enumVariant(kind, v string) string {
	if v == "" {
		return "None"
	}
	return "Some(" + kind + "::" + strings.ToUpper(v[:1]) + v[1:] + ")"
}

func single(list []extension, name string) string {
	if e, ok := extValue(list, name); ok && len(e.values) > 0 {
		return e.values[0]
	}
	return ""
}

func patchStrategy(v string) string {
	switch v {
	case "":
		return "None"
	case "merge":
		return "Some(PatchStrategy::Merge)"
	case "retainKeys":
		return "Some(PatchStrategy::RetainKeys)"
	case "merge,retainKeys":
		return "Some(PatchStrategy::MergeRetainKeys)"
	case "replace":
		return "Some(PatchStrategy::Replace)"
	}
	fatalf("unknown patch strategy %q", v)
	return ""
}

// otherExtensions renders the extensions the typed columns do not hold.
func otherExtensions(list []extension) string {
	var out []string
	for _, e := range list {
		switch e.name {
		case "x-kubernetes-list-map-keys", "x-kubernetes-list-type", "x-kubernetes-map-type",
			"x-kubernetes-patch-merge-key", "x-kubernetes-patch-strategy":
			continue
		}
		var v any = e.values[0]
		if e.array {
			v = e.values
		}
		b, _ := json.Marshal(v)
		out = append(out, "("+rustStr(e.name)+", "+rustStr(string(b))+")")
	}
	return "&[" + strings.Join(out, ", ") + "]"
}

func fieldParts(f *fieldFact) []string {
	p := []string{"name: " + rustStr(f.name)}
	if f.shape != "Scalar" {
		p = append(p, "shape: Shape::"+f.shape)
	}
	if f.elem != "" {
		p = append(p, "elem: "+optStr(f.elem))
	}
	if f.elemShape != "" {
		p = append(p, "elem_shape: Some(Shape::"+f.elemShape+")")
	}
	if f.required {
		p = append(p, "required: true")
	}
	if v := single(f.extensions, "x-kubernetes-patch-strategy"); v != "" {
		p = append(p, "patch_strategy: "+patchStrategy(v))
	}
	if v := single(f.extensions, "x-kubernetes-patch-merge-key"); v != "" {
		p = append(p, "merge_key: "+optStr(v))
	}
	if v := single(f.extensions, "x-kubernetes-list-type"); v != "" {
		p = append(p, "list_type: "+enumVariant("ListType", v))
	}
	if e, ok := extValue(f.extensions, "x-kubernetes-list-map-keys"); ok {
		p = append(p, "list_map_keys: "+strList(e.values))
	}
	if v := single(f.extensions, "x-kubernetes-map-type"); v != "" {
		p = append(p, "map_type: "+enumVariant("MapType", v))
	}
	if o := otherExtensions(f.extensions); o != "&[]" {
		p = append(p, "extensions: "+o)
	}
	if f.def != "" {
		p = append(p, "default: "+optStr(f.def))
	}
	if f.zero != "" {
		p = append(p, "zero: "+optStr(f.zero))
	}
	if f.goType != "" {
		p = append(p, "go_type: "+rustStr(f.goType))
	}
	if len(f.itemDefaults) > 0 {
		var ds []string
		for _, d := range f.itemDefaults {
			ds = append(ds, optStr(d))
		}
		p = append(p, "item_defaults: &["+strings.Join(ds, ", ")+"]")
	}
	if f.enum != "" {
		p = append(p, "enum_type: "+optStr(f.enum))
		if f.enumLevel != 0 {
			p = append(p, fmt.Sprintf("enum_level: %d", f.enumLevel))
		}
	}
	return p
}

var kindTypes = map[string]reflect.Type{}

func render(kinds []kindRow) []byte {
	var b bytes.Buffer
	b.WriteString(`// @generated by hack/gen-api-schema (gen.sh) from the Kubernetes v1.33 Go API types
// (k8s.io/api, k8s.io/apimachinery, k8s.io/apiextensions-apiserver, k8s.io/kube-aggregator
// v0.33.13): their reflection and their source comments' markers. Do not edit; rerun
// hack/gen-api-schema/gen.sh, and check with hack/gen-api-schema/gen.sh --check.

use super::{EnumDef, FieldDef, KindDef, ListDocDef, ListType, MapType, ParamDef, PatchStrategy, Shape, TypeDef, UnionDef};

`)
	names := make([]string, 0, len(typeFacts))
	for n := range typeFacts {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(&b, "pub(super) static TYPES: &[TypeDef] = &[\n")
	for _, n := range names {
		tf := typeFacts[n]
		var parts []string
		parts = append(parts, "name: "+rustStr(n))
		if tf.opaque {
			parts = append(parts, "opaque: true")
		}
		if len(tf.required) > 0 {
			parts = append(parts, "required: "+strList(tf.required))
		}
		if mt := single(tf.extensions, "x-kubernetes-map-type"); mt != "" {
			parts = append(parts, "map_type: "+enumVariant("MapType", mt))
		}
		if o := otherExtensions(tf.extensions); o != "&[]" {
			parts = append(parts, "extensions: "+o)
		}
		if len(tf.unions) > 0 {
			var us []string
			for _, u := range tf.unions {
				var pairs []string
				for _, f := range u.fields {
					pairs = append(pairs, "("+rustStr(f[0])+", "+rustStr(f[1])+")")
				}
				us = append(us, fmt.Sprintf("UnionDef { discriminator: %s, fields: &[%s] }", optStr(u.discriminator), strings.Join(pairs, ", ")))
			}
			parts = append(parts, "unions: &["+strings.Join(us, ", ")+"]")
		}
		fmt.Fprintf(&b, "    TypeDef {\n        %s,\n", strings.Join(parts, ",\n        "))
		if len(tf.fields) > 0 {
			b.WriteString("        fields: &[\n")
			for _, f := range tf.fields {
				b.WriteString("            FieldDef { " + strings.Join(fieldParts(f), ", ") + ", ..FieldDef::EMPTY },\n")
			}
			b.WriteString("        ],\n")
		}
		b.WriteString("        ..TypeDef::EMPTY\n    },\n")
	}
	b.WriteString("];\n\n")

	enames := make([]string, 0, len(enumFacts))
	for n := range enumFacts {
		enames = append(enames, n)
	}
	sort.Strings(enames)
	b.WriteString("pub(super) static ENUMS: &[EnumDef] = &[\n")
	for _, n := range enames {
		e := enumFacts[n]
		fmt.Fprintf(&b, "    EnumDef {\n        name: %s,\n        values: &[\n", rustStr(n))
		for _, v := range e.values {
			fmt.Fprintf(&b, "            (%s, %s),\n", rustStr(v[0]), rustStr(v[1]))
		}
		b.WriteString("        ],\n    },\n")
	}
	b.WriteString("];\n\n")

	b.WriteString("pub(super) static KINDS: &[KindDef] = &[\n")
	for _, k := range kinds {
		fmt.Fprintf(&b, "    KindDef { group: %s, version: %s, kind: %s, type_name: %s, zero: %s },\n",
			rustStr(k.gvk.Group), rustStr(k.gvk.Version), rustStr(k.gvk.Kind), rustStr(k.typeName), rustStr(k.zero))
	}
	b.WriteString("];\n\n")
	renderParams(&b)
	b.WriteString("\n")
	renderListDocs(&b, kinds, kindTypes)
	return b.Bytes()
}

// optionTypes are the query-parameter structs of the API's operations; their fields
// documentation (SwaggerDoc) describes the parameters in OpenAPI.
var optionTypes = []interface {
	SwaggerDoc() map[string]string
}{
	metav1.ListOptions{}, metav1.CreateOptions{}, metav1.UpdateOptions{}, metav1.PatchOptions{},
	metav1.DeleteOptions{}, corev1.PodLogOptions{}, corev1.PodExecOptions{}, corev1.PodAttachOptions{},
	corev1.PodPortForwardOptions{}, corev1.PodProxyOptions{}, corev1.NodeProxyOptions{},
	corev1.ServiceProxyOptions{},
}

func renderParams(b *bytes.Buffer) {
	b.WriteString("pub(super) static PARAMS: &[ParamDef] = &[\n")
	var rows []string
	for _, o := range optionTypes {
		t := reflect.TypeOf(o)
		docs := o.SwaggerDoc()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, opts := jsonTag(f)
			if name == "-" || has(opts, "inline") || f.Anonymous {
				continue
			}
			ty := "string"
			switch deref(f.Type).Kind() {
			case reflect.Bool:
				ty = "boolean"
			case reflect.Int, reflect.Int32, reflect.Int64:
				ty = "integer"
			case reflect.Slice:
				if k := deref(f.Type).Elem().Kind(); k == reflect.Int32 || k == reflect.Int64 {
					ty = "integer"
				}
			}
			rows = append(rows, fmt.Sprintf("    ParamDef { options: %s, name: %s, openapi_type: %s, description: %s },\n",
				rustStr(t.Name()), rustStr(name), rustStr(ty), rustStr(docs[name])))
		}
	}
	sort.Strings(rows)
	for _, r := range rows {
		b.WriteString(r)
	}
	b.WriteString("];\n")
}

// renderListDocs writes the documentation of the list kinds (PodList, ...), which
// k8s-openapi does not model as types of their own.
func renderListDocs(b *bytes.Buffer, kinds []kindRow, types map[string]reflect.Type) {
	b.WriteString("pub(super) static LIST_DOCS: &[ListDocDef] = &[\n")
	seen := map[string]bool{}
	var rows []string
	for _, k := range kinds {
		t := types[k.typeName]
		if seen[k.typeName] || !strings.HasSuffix(t.Name(), "List") {
			continue
		}
		seen[k.typeName] = true
		if _, ok := t.FieldByName("Items"); !ok {
			continue
		}
		var docs map[string]string
		if d, ok := reflect.New(t).Elem().Interface().(interface{ SwaggerDoc() map[string]string }); ok {
			docs = d.SwaggerDoc()
		} else {
			// Packages without generated swagger docs: their comments, as the OpenAPI
			// generator turns them into descriptions.
			src := source(t.PkgPath())
			docs = map[string]string{"": describe(typeComments(t))}
			for _, f := range []string{"Items", "ListMeta"} {
				if sf, ok := t.FieldByName(f); ok {
					name, _ := jsonTag(sf)
					docs[name] = describe(src.fields[t.Name()][f])
				}
			}
		}
		rows = append(rows, fmt.Sprintf("    ListDocDef { type_name: %s, description: %s, items: %s, metadata: %s },\n",
			rustStr(k.typeName), rustStr(docs[""]), rustStr(docs["items"]), rustStr(docs["metadata"])))
	}
	sort.Strings(rows)
	for _, r := range rows {
		b.WriteString(r)
	}
	b.WriteString("];\n")
}

// describe joins comment lines into a description: paragraphs kept, indented lines on
// lines of their own, markers, TODOs and everything after a "---" line dropped.
func describe(lines []string) string {
	var b strings.Builder
	drop := func() {
		if b.Len() > 0 {
			str := b.String()
			b.Reset()
			b.WriteString(str[:len(str)-1])
		}
	}
	for _, line := range lines {
		if line == "---" {
			break
		}
		line = strings.TrimRight(line, " ")
		leading := strings.TrimLeft(line, " ")
		switch {
		case len(line) == 0:
			drop()
			b.WriteString("\n\n")
		case strings.HasPrefix(leading, "TODO"), strings.HasPrefix(leading, "+"):
		default:
			if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
				drop()
				line = "\n" + line + "\n"
			} else {
				line += " "
			}
			b.WriteString(line)
		}
	}
	return strings.TrimSpace(b.String())
}

type kindRow struct {
	gvk      schema.GroupVersionKind
	typeName string
	// zero is the kind's Go zero value as unstructured JSON: what server-side apply's
	// field manager compares a created object against (non-pointer structs and fields
	// without omitempty are present in it).
	zero string
}

// zeroJSON renders the zero value of t the way the field manager sees it.
func zeroJSON(t reflect.Type) string {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(reflect.New(t).Interface())
	if err != nil {
		fatalf("zero value of %v: %v", t, err)
	}
	b, err := json.Marshal(u)
	if err != nil {
		fatalf("zero value of %v: %v", t, err)
	}
	return string(b)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "gen-api-schema: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	out := flag.String("out", "", "write the Rust table to this file")
	check := flag.String("check", "", "fail if this file differs from what would be written")
	flag.Parse()
	if (*out == "") == (*check == "") {
		fatalf("give exactly one of -out or -check")
	}

	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		scheme.AddToScheme,
		admissionv1.AddToScheme,
		admissionv1beta1.AddToScheme,
		imagepolicyv1alpha1.AddToScheme,
		apiextensionsv1.AddToScheme,
		apiextensionsv1beta1.AddToScheme,
		apiregistrationv1.AddToScheme,
		apiregistrationv1beta1.AddToScheme,
	} {
		if err := add(s); err != nil {
			fatalf("%v", err)
		}
	}
	// Parse every API package first: aliases in one package change facts of another's types.
	for _, t := range s.AllKnownTypes() {
		source(t.PkgPath())
	}
	var kinds []kindRow
	for gvk, t := range s.AllKnownTypes() {
		if gvk.Version == runtime.APIVersionInternal {
			continue
		}
		walk(t)
		kinds = append(kinds, kindRow{gvk, openAPIName(t), zeroJSON(t)})
		kindTypes[openAPIName(t)] = t
	}
	for _, t := range []reflect.Type{
		reflect.TypeOf(metav1.Status{}),
		reflect.TypeOf(metav1.WatchEvent{}),
		reflect.TypeOf(metav1.APIGroupList{}),
		reflect.TypeOf(metav1.APIGroup{}),
		reflect.TypeOf(metav1.APIResourceList{}),
		reflect.TypeOf(metav1.APIVersions{}),
		reflect.TypeOf(metav1.Patch{}),
		reflect.TypeOf(metav1.Table{}),
		reflect.TypeOf(metav1.PartialObjectMetadataList{}),
		reflect.TypeOf(version.Info{}),
	} {
		walk(t)
	}
	sort.Slice(kinds, func(i, j int) bool {
		a, b := kinds[i].gvk, kinds[j].gvk
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.Kind < b.Kind
	})
	text := render(kinds)
	if *out != "" {
		if err := os.WriteFile(*out, text, 0o644); err != nil {
			fatalf("%v", err)
		}
		return
	}
	old, err := os.ReadFile(*check)
	if err != nil {
		fatalf("%v", err)
	}
	if !bytes.Equal(old, text) {
		fatalf("%s is stale: run hack/gen-api-schema/gen.sh", *check)
	}
}
