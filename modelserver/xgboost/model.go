// Package xgboost is sagehost's built-in XGBoost model server: pure Go
// inference for models trained with XGBoost, served through SageMaker's
// container contract the way SageMaker's own XGBoost container
// (aws/sagemaker-xgboost-container, algorithm mode) serves them.
//
// It owns three things:
//
//   - Loading models (model.go, modeljson.go, ubjson.go, legacy.go): XGBoost's
//     JSON and UBJSON model formats and the legacy binary format that
//     SageMaker's XGBoost algorithm writes as xgboost-model, detected by
//     content; gbtree, dart and gblinear boosters.
//   - Predicting (predict.go, objective.go) with the results XGBoost's own
//     predictor gives: trees are flattened into one node array, leaf values
//     are summed in float32 in tree order per output group on top of the
//     base margin, then the objective's transform is applied. Like the
//     container, it uses the first best_ntree_limit trees when the model
//     records that attribute.
//   - Serving (parse.go, output.go, serve.go): GET /ping, POST /invocations
//     with text/csv, text/libsvm, application/json, application/jsonlines and
//     application/x-recordio-protobuf bodies, answers chosen by Accept, the
//     container's selectable inference output (SAGEMAKER_INFERENCE_OUTPUT),
//     and the container's status codes and messages. With
//     SAGEMAKER_MULTI_MODEL=true (multimodel.go) it starts with no model and
//     serves SageMaker's multi-model container API instead: models loaded
//     by name from directories with POST /models, listed, described and
//     unloaded under /models, and invoked with
//     POST /models/{model_name}/invoke, which predicts as /invocations does.
//
// Main runs it as a process: `sagehost model-server xgboost serve`.
package xgboost

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// ModelFileName is the file SageMaker's XGBoost container loads from the
// model directory.
const ModelFileName = "xgboost-model"

// Model is a loaded XGBoost model. It is immutable and safe for concurrent
// use.
type Model struct {
	format     string
	version    string
	booster    string
	obj        *objective
	numFeature int
	numClass   int
	numGroups  int
	baseScore  []float32 // as stored in the model, one per group
	baseMargin []float32 // base_score in margin space, one per group
	// numParallelTree trees per output group per boosting round.
	numParallelTree int
	bestNTreeLimit  int
	// defaultTrees is how many trees a prediction uses unless told to use
	// all: the trees of the first best_ntree_limit rounds, as the container
	// predicts.
	defaultTrees int

	trees []treeRef
	nodes []node
	// leafValue holds each leaf's value (times its dart weight), indexed
	// like nodes.
	leafValue []float32
	cats      []catSet

	linear []float32 // gblinear weights: feature-major, then one bias per group
}

type treeRef struct {
	root  int32
	group int32
	// depth is the number of splits on the tree's longest path: every
	// walk takes that many steps, leaves stepping to themselves.
	depth int32
}

// rawModel is a model as decoded from any format, before validation and
// flattening.
type rawModel struct {
	format          string
	version         string
	booster         string
	objective       string
	numFeature      int
	numClass        int
	numTarget       int
	baseScore       []float32
	attributes      map[string]string
	numParallelTree int
	trees           []rawTree
	treeInfo        []int32
	weightDrop      []float32
	linearWeights   []float32
}

type rawTree struct {
	left, right []int32
	feature     []int64
	cond        []float32
	defaultLeft []bool
	// categorical maps each categorical split node to the categories that
	// go right.
	categorical map[int32][]int64
}

// Format names the model's file format: "json", "ubjson" or "binary".
func (m *Model) Format() string { return m.format }

// Version is the XGBoost version that saved the model, when it says.
func (m *Model) Version() string { return m.version }

// Booster is "gbtree", "dart" or "gblinear".
func (m *Model) Booster() string { return m.booster }

// Objective is the model's objective, e.g. "binary:logistic".
func (m *Model) Objective() string { return m.obj.name }

// NumFeature is the number of features the model was trained with.
func (m *Model) NumFeature() int { return m.numFeature }

// NumClass is num_class (0 unless multi-class).
func (m *Model) NumClass() int { return m.numClass }

// NumGroups is the number of output groups: margins per row.
func (m *Model) NumGroups() int { return m.numGroups }

// NumTrees is the number of trees in the model (0 for gblinear).
func (m *Model) NumTrees() int { return len(m.trees) }

// BestNTreeLimit is the best_ntree_limit attribute (0 if absent): the
// container predicts with the trees of that many rounds.
func (m *Model) BestNTreeLimit() int { return m.bestNTreeLimit }

// DefaultTrees is how many trees Predict uses unless AllTrees is set.
func (m *Model) DefaultTrees() int { return m.defaultTrees }

// BaseScore is base_score as stored in the model (in output space; the
// predictor starts from its margin-space image).
func (m *Model) BaseScore() []float32 { return append([]float32(nil), m.baseScore...) }

// Load loads the model from a model directory laid out as SageMaker's
// XGBoost container expects: the file xgboost-model (JSON, UBJSON or the
// legacy binary format), or else the first *.json or *.ubj file.
func Load(dir string) (*Model, error) {
	path, err := findModelFile(dir)
	if err != nil {
		return nil, err
	}
	return LoadFile(path)
}

func findModelFile(dir string) (string, error) {
	p := filepath.Join(dir, ModelFileName)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return p, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("reading model directory: %w", err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if ext != ".json" && ext != ".ubj" {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, e.Name())); err == nil && fi.Mode().IsRegular() {
			return filepath.Join(dir, e.Name()), nil
		}
	}
	found := "it is empty"
	if len(names) > 0 {
		sort.Strings(names)
		if len(names) > 10 {
			names = append(names[:10], "...")
		}
		found = "it holds " + strings.Join(names, ", ")
	}
	return "", fmt.Errorf("no XGBoost model in %s: expected a file named %s or a *.json or *.ubj file, but %s", dir, ModelFileName, found)
}

// LoadFile loads a model file in any supported format.
func LoadFile(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading model: %w", err)
	}
	m, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", path, err)
	}
	return m, nil
}

// Parse decodes a model, detecting its format from its content: JSON,
// UBJSON, or the legacy binary format.
func Parse(b []byte) (*Model, error) {
	var raw *rawModel
	var err error
	switch detectFormat(b) {
	case "json":
		raw, err = parseJSONModel(jsonNonFinite(b), "json")
	case "ubjson":
		var j []byte
		if j, err = ubjsonToJSON(b); err == nil {
			raw, err = parseJSONModel(j, "ubjson")
		}
	case "pickle":
		return nil, errors.New("the model is a Python pickle (as SageMaker's XGBoost 1.0-1.2 algorithm saved it), which sagehost cannot read: " +
			"load it with XGBoost and re-save it with booster.save_model(\"xgboost-model.json\") (JSON) or \"xgboost-model.ubj\" (UBJSON)")
	case "empty":
		return nil, errors.New("the model file is empty")
	default:
		raw, err = parseLegacyModel(b)
		if err != nil {
			err = fmt.Errorf("not a JSON or UBJSON XGBoost model, and reading it as the legacy binary format failed: %w "+
				"(re-save the model with booster.save_model(\"xgboost-model.json\") to use JSON)", err)
		}
	}
	if err != nil {
		return nil, err
	}
	return build(raw)
}

// detectFormat tells the model formats apart by their first bytes. JSON and
// UBJSON both start with '{': in JSON a string or '}' follows (after
// whitespace), in UBJSON the type marker of the first key's length.
func detectFormat(b []byte) string {
	t := bytes.TrimLeft(b, " \t\r\n")
	switch {
	case len(t) == 0:
		return "empty"
	case t[0] == '{':
		rest := bytes.TrimLeft(t[1:], " \t\r\n")
		if len(rest) > 0 && (rest[0] == '"' || rest[0] == '}') {
			return "json"
		}
		return "ubjson"
	case b[0] == 0x80 && len(b) > 1 && b[1] >= 2 && b[1] <= 5:
		return "pickle" // PROTO opcode and protocol 2-5
	}
	return "binary"
}

// build validates a decoded model and flattens it for prediction.
func build(raw *rawModel) (*Model, error) {
	obj, err := lookupObjective(raw.objective)
	if err != nil {
		return nil, err
	}
	m := &Model{
		format:          raw.format,
		version:         raw.version,
		booster:         raw.booster,
		obj:             obj,
		numFeature:      raw.numFeature,
		numClass:        raw.numClass,
		numParallelTree: raw.numParallelTree,
	}
	if raw.numClass > maxGroups || raw.numTarget > maxGroups {
		return nil, fmt.Errorf("invalid num_class %d or num_target %d (at most %d supported)", raw.numClass, raw.numTarget, maxGroups)
	}
	m.numGroups = max(raw.numClass, raw.numTarget, 1)
	if obj.multiClass && raw.numClass < 1 {
		return nil, fmt.Errorf("objective %s without num_class", obj.name)
	}
	if m.numFeature <= 0 || m.numFeature > maxFeatures {
		return nil, fmt.Errorf("invalid num_feature %d (1 to %d supported)", m.numFeature, maxFeatures)
	}
	switch len(raw.baseScore) {
	case 1:
		for range m.numGroups {
			m.baseScore = append(m.baseScore, raw.baseScore[0])
		}
	case m.numGroups:
		m.baseScore = raw.baseScore
	default:
		return nil, fmt.Errorf("base_score has %d values for %d output groups", len(raw.baseScore), m.numGroups)
	}
	for _, s := range m.baseScore {
		mg, err := obj.probToMargin(s)
		if err != nil {
			return nil, err
		}
		m.baseMargin = append(m.baseMargin, mg)
	}

	if raw.booster == "gblinear" {
		want := (m.numFeature + 1) * m.numGroups
		if len(raw.linearWeights) != want {
			return nil, fmt.Errorf("gblinear model has %d weights, want (num_feature+1)*groups = %d", len(raw.linearWeights), want)
		}
		m.linear = raw.linearWeights
		return m, nil
	}

	if m.numParallelTree < 1 {
		m.numParallelTree = 1
	}
	if len(raw.treeInfo) != len(raw.trees) {
		return nil, fmt.Errorf("tree_info has %d entries for %d trees", len(raw.treeInfo), len(raw.trees))
	}
	if raw.booster == "dart" && len(raw.weightDrop) != len(raw.trees) {
		return nil, fmt.Errorf("dart weight_drop has %d entries for %d trees", len(raw.weightDrop), len(raw.trees))
	}
	for i, t := range raw.trees {
		g := raw.treeInfo[i]
		if g < 0 || int(g) >= m.numGroups {
			return nil, fmt.Errorf("tree %d belongs to output group %d, but the model has %d", i, g, m.numGroups)
		}
		weight := float32(1)
		if raw.booster == "dart" {
			weight = raw.weightDrop[i]
		}
		if err := m.addTree(&t, weight, g); err != nil {
			return nil, fmt.Errorf("tree %d: %w", i, err)
		}
	}

	m.defaultTrees = len(m.trees)
	if s, ok := raw.attributes["best_ntree_limit"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("invalid best_ntree_limit attribute %q", s)
		}
		m.bestNTreeLimit = n
		// As XGBoost's Python predict(ntree_limit=n): n/num_parallel_tree
		// boosting rounds, each of num_parallel_tree trees per group.
		if rounds := n / m.numParallelTree; rounds > 0 {
			m.defaultTrees = min(rounds*m.numParallelTree*m.numGroups, len(m.trees))
		}
	}
	return m, nil
}

// maxFeatures bounds num_feature: prediction keeps rows of that many
// values.
const maxFeatures = 1 << 26

// maxGroups bounds the outputs per row.
const maxGroups = 1 << 20

// Node layout. The flattened trees put each split's children next to each
// other (right = left+1), so a node needs no right index; a leaf is a
// split that leads back to itself whatever the value (its threshold is
// NaN, which no comparison passes, and missing values go left), so that
// walking a tree is a fixed number of steps without a test for leaves.
const (
	flagDefaultLeft = 1 << 31
	flagCategorical = 1 << 30
	featureMask     = 1<<30 - 1
)

type node struct {
	// cond is the split threshold: a value below it goes left. NaN for a
	// leaf; for a categorical split, the index of its category set in
	// Model.cats, as bits.
	cond float32
	// info holds the split feature and flags.
	info uint32
	// left is the left child's index in Model.nodes, the node itself for a
	// leaf.
	left int32
}

// catSet holds, sorted, the categories that go right at a categorical split.
type catSet []int32

// addTree validates one tree and appends it, laid out breadth first, to
// m.nodes.
func (m *Model) addTree(t *rawTree, weight float32, group int32) error {
	n := len(t.left)
	if n == 0 {
		return errors.New("tree has no nodes")
	}
	if len(m.nodes)+n > math.MaxInt32/2 {
		return errors.New("model too large")
	}
	base := int32(len(m.nodes))
	// newIdx maps an original node to its slot; slots are handed out as
	// nodes are reached, so an unreachable (deleted) node gets none, and
	// a node reached twice means the "tree" is not one.
	newIdx := make([]int32, n)
	for i := range newIdx {
		newIdx[i] = -1
	}
	depth := make([]int32, n)
	queue := make([]int32, 0, n)
	queue = append(queue, 0)
	newIdx[0] = base
	m.nodes = append(m.nodes, node{})
	m.leafValue = append(m.leafValue, 0)
	var maxDepth int32
	for qi := 0; qi < len(queue); qi++ {
		old := queue[qi]
		l, r := t.left[old], t.right[old]
		self := newIdx[old]
		if l == -1 {
			// rounds like XGBoost's leaf*weight, before it is added
			m.leafValue[self] = float32(t.cond[old] * weight)
			m.nodes[self] = node{cond: nan32, info: flagDefaultLeft, left: self}
			continue
		}
		if l == r {
			return fmt.Errorf("node %d has the same left and right child", old)
		}
		for _, c := range [2]int32{l, r} {
			if c <= 0 || int(c) >= n {
				return fmt.Errorf("node %d has child %d, outside the tree's %d nodes", old, c, n)
			}
			if newIdx[c] != -1 {
				return fmt.Errorf("node %d is reached twice: not a tree", c)
			}
		}
		f := t.feature[old]
		if f < 0 || f >= int64(m.numFeature) {
			return fmt.Errorf("node %d splits on feature %d, but the model has %d features", old, f, m.numFeature)
		}
		left := int32(len(m.nodes))
		newIdx[l], newIdx[r] = left, left+1
		depth[l], depth[r] = depth[old]+1, depth[old]+1
		maxDepth = max(maxDepth, depth[old]+1)
		m.nodes = append(m.nodes, node{}, node{})
		m.leafValue = append(m.leafValue, 0, 0)
		queue = append(queue, l, r)
		nd := node{left: left, info: uint32(f), cond: t.cond[old]}
		if t.defaultLeft[old] {
			nd.info |= flagDefaultLeft
		}
		if cats, ok := t.categorical[old]; ok {
			set, err := newCatSet(cats)
			if err != nil {
				return fmt.Errorf("node %d: %w", old, err)
			}
			nd.info |= flagCategorical
			nd.cond = math.Float32frombits(uint32(len(m.cats)))
			m.cats = append(m.cats, set)
		}
		m.nodes[self] = nd
	}
	m.trees = append(m.trees, treeRef{root: base, group: group, depth: maxDepth})
	return nil
}

// maxCategory mirrors XGBoost: categories are non-negative integers below
// 2^24, the largest range a float32 holds exactly.
const maxCategory = 1 << 24

func newCatSet(cats []int64) (catSet, error) {
	set := make(catSet, 0, len(cats))
	for _, c := range cats {
		if c < 0 || c >= maxCategory {
			return nil, fmt.Errorf("invalid category %d", c)
		}
		set = append(set, int32(c))
	}
	slices.Sort(set)
	return slices.Compact(set), nil
}

// goesRight decides a categorical split for a present value: the value's
// category (truncated to an integer) goes right if it is in the set; a
// negative, too large or unknown category goes left.
func (s catSet) goesRight(v float32) bool {
	if !(v >= 0 && v < maxCategory) {
		return false
	}
	_, found := slices.BinarySearch(s, int32(v))
	return found
}
