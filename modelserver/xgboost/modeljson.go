package xgboost

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The JSON model schema (doc/model.schema in XGBoost), reduced to what
// prediction reads. UBJSON models are transcoded to JSON first.

type jsonModel struct {
	Learner *struct {
		Attributes        map[string]string `json:"attributes"`
		GradientBooster   *jsonBooster      `json:"gradient_booster"`
		LearnerModelParam struct {
			BaseScore  string `json:"base_score"`
			NumClass   string `json:"num_class"`
			NumFeature string `json:"num_feature"`
			NumTarget  string `json:"num_target"`
		} `json:"learner_model_param"`
		Objective struct {
			Name string `json:"name"`
		} `json:"objective"`
	} `json:"learner"`
	Version []int `json:"version"`
}

// jsonBooster is gbtree, dart (which wraps a gbtree) or gblinear.
type jsonBooster struct {
	Name string `json:"name"`
	// gbtree and gblinear
	Model *struct {
		GBTreeModelParam struct {
			NumParallelTree string `json:"num_parallel_tree"`
			NumTrees        string `json:"num_trees"`
			SizeLeafVector  string `json:"size_leaf_vector"`
		} `json:"gbtree_model_param"`
		TreeInfo []int32    `json:"tree_info"`
		Trees    []jsonTree `json:"trees"`
		// gblinear
		Weights []float32 `json:"weights"`
	} `json:"model"`
	// dart
	GBTree     *jsonBooster `json:"gbtree"`
	WeightDrop []float32    `json:"weight_drop"`
}

type jsonTree struct {
	TreeParam struct {
		NumNodes       string `json:"num_nodes"`
		SizeLeafVector string `json:"size_leaf_vector"`
	} `json:"tree_param"`
	LeftChildren       []int32    `json:"left_children"`
	RightChildren      []int32    `json:"right_children"`
	SplitIndices       []int64    `json:"split_indices"`
	SplitConditions    []float32  `json:"split_conditions"`
	DefaultLeft        []flexBool `json:"default_left"`
	SplitType          []int32    `json:"split_type"`
	Categories         []int64    `json:"categories"`
	CategoriesNodes    []int64    `json:"categories_nodes"`
	CategoriesSegments []int64    `json:"categories_segments"`
	CategoriesSizes    []int64    `json:"categories_sizes"`
}

// flexBool reads default_left entries, which XGBoost has written both as
// 0/1 and as true/false.
type flexBool bool

func (b *flexBool) UnmarshalJSON(p []byte) error {
	switch string(p) {
	case "1", "true":
		*b = true
	case "0", "false":
		*b = false
	default:
		return fmt.Errorf("invalid default_left entry %s", p)
	}
	return nil
}

// parseJSONModel decodes a JSON model document: XGBoost's JSON text after
// jsonNonFinite, or a UBJSON model's transcoding, which writes non-finite
// numbers as null already.
func parseJSONModel(data []byte, format string) (*rawModel, error) {
	var doc jsonModel
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("decoding the %s model: %w", format, err)
	}
	l := doc.Learner
	if l == nil || l.GradientBooster == nil {
		return nil, fmt.Errorf("decoding the %s model: no learner.gradient_booster: not an XGBoost model", format)
	}
	raw := &rawModel{
		format:     format,
		objective:  l.Objective.Name,
		attributes: l.Attributes,
	}
	if len(doc.Version) > 0 {
		parts := make([]string, len(doc.Version))
		for i, v := range doc.Version {
			parts[i] = strconv.Itoa(v)
		}
		raw.version = strings.Join(parts, ".")
	}
	p := l.LearnerModelParam
	var err error
	if raw.numFeature, err = paramInt("num_feature", p.NumFeature, 0); err != nil {
		return nil, err
	}
	if raw.numClass, err = paramInt("num_class", p.NumClass, 0); err != nil {
		return nil, err
	}
	if raw.numTarget, err = paramInt("num_target", p.NumTarget, 1); err != nil {
		return nil, err
	}
	if raw.baseScore, err = parseBaseScore(p.BaseScore); err != nil {
		return nil, err
	}

	gb := l.GradientBooster
	raw.booster = gb.Name
	switch gb.Name {
	case "gbtree":
	case "dart":
		raw.weightDrop = gb.WeightDrop
		if gb.GBTree == nil {
			return nil, errors.New("dart booster without its gbtree")
		}
		gb = gb.GBTree
	case "gblinear":
		if gb.Model == nil {
			return nil, errors.New("gblinear booster without its model")
		}
		raw.linearWeights = gb.Model.Weights
		if raw.linearWeights == nil {
			raw.linearWeights = []float32{}
		}
		return raw, nil
	default:
		return nil, fmt.Errorf("unsupported booster %q (supported: gbtree, dart, gblinear)", gb.Name)
	}
	if gb.Model == nil {
		return nil, fmt.Errorf("%s booster without its model", raw.booster)
	}
	m := gb.Model
	if raw.numParallelTree, err = paramInt("num_parallel_tree", m.GBTreeModelParam.NumParallelTree, 1); err != nil {
		return nil, err
	}
	if v, err := paramInt("size_leaf_vector", m.GBTreeModelParam.SizeLeafVector, 0); err != nil {
		return nil, err
	} else if v > 1 {
		return nil, fmt.Errorf("multi-output trees (size_leaf_vector %d) are not supported", v)
	}
	raw.treeInfo = m.TreeInfo
	raw.trees = make([]rawTree, len(m.Trees))
	for i := range m.Trees {
		t, err := m.Trees[i].raw()
		if err != nil {
			return nil, fmt.Errorf("tree %d: %w", i, err)
		}
		raw.trees[i] = t
	}
	return raw, nil
}

func (t *jsonTree) raw() (rawTree, error) {
	n, err := paramInt("num_nodes", t.TreeParam.NumNodes, len(t.LeftChildren))
	if err != nil {
		return rawTree{}, err
	}
	if v, err := paramInt("size_leaf_vector", t.TreeParam.SizeLeafVector, 0); err != nil {
		return rawTree{}, err
	} else if v > 1 {
		return rawTree{}, fmt.Errorf("multi-output tree (size_leaf_vector %d) is not supported", v)
	}
	if len(t.LeftChildren) != n || len(t.RightChildren) != n || len(t.SplitIndices) != n ||
		len(t.SplitConditions) != n || len(t.DefaultLeft) != n {
		return rawTree{}, fmt.Errorf("node arrays disagree with num_nodes %d (left_children %d, right_children %d, split_indices %d, split_conditions %d, default_left %d)",
			n, len(t.LeftChildren), len(t.RightChildren), len(t.SplitIndices), len(t.SplitConditions), len(t.DefaultLeft))
	}
	if t.SplitType != nil && len(t.SplitType) != n {
		return rawTree{}, fmt.Errorf("split_type has %d entries for %d nodes", len(t.SplitType), n)
	}
	r := rawTree{
		left:        t.LeftChildren,
		right:       t.RightChildren,
		feature:     t.SplitIndices,
		cond:        t.SplitConditions,
		defaultLeft: make([]bool, n),
	}
	for i, b := range t.DefaultLeft {
		r.defaultLeft[i] = bool(b)
	}
	for i, st := range t.SplitType {
		if st != 0 && st != 1 {
			return rawTree{}, fmt.Errorf("node %d: unknown split_type %d", i, st)
		}
		if st == 1 {
			if r.categorical == nil {
				r.categorical = map[int32][]int64{}
			}
			r.categorical[int32(i)] = nil
		}
	}
	if len(t.CategoriesNodes) != len(t.CategoriesSegments) || len(t.CategoriesNodes) != len(t.CategoriesSizes) {
		return rawTree{}, errors.New("categories_nodes, categories_segments and categories_sizes differ in length")
	}
	for i, nid := range t.CategoriesNodes {
		beg, size := t.CategoriesSegments[i], t.CategoriesSizes[i]
		if nid < 0 || nid >= int64(n) || beg < 0 || size < 0 || beg > int64(len(t.Categories)) || size > int64(len(t.Categories))-beg {
			return rawTree{}, fmt.Errorf("categorical node entry %d (node %d, segment %d+%d) is out of range", i, nid, beg, size)
		}
		if _, ok := r.categorical[int32(nid)]; !ok {
			return rawTree{}, fmt.Errorf("node %d has categories but is not a categorical split", nid)
		}
		r.categorical[int32(nid)] = t.Categories[beg : beg+size]
	}
	return r, nil
}

// paramInt parses one of the string-valued integer parameters of the
// model; an absent one takes its default.
func paramInt(name, s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("invalid %s %q", name, s)
	}
	return v, nil
}

// parseBaseScore parses learner_model_param.base_score: a float as a string
// ("5E-1"), or from XGBoost 3 on possibly a vector ("[5E-1,2E-1]"), one per
// output group.
func parseBaseScore(s string) ([]float32, error) {
	if s == "" {
		return []float32{0.5}, nil // XGBoost's default
	}
	inner := strings.TrimSpace(s)
	if strings.HasPrefix(inner, "[") && strings.HasSuffix(inner, "]") {
		inner = inner[1 : len(inner)-1]
	}
	var out []float32
	for _, part := range strings.Split(inner, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(part), 32)
		if err != nil {
			return nil, fmt.Errorf("invalid base_score %q", s)
		}
		out = append(out, float32(v))
	}
	return out, nil
}

// jsonNonFinite rewrites the NaN, Infinity and -Infinity literals that
// XGBoost's JSON writer emits (e.g. as the split_conditions of categorical
// splits), which are not JSON, to null; it returns b itself when there are
// none.
func jsonNonFinite(b []byte) []byte {
	var out []byte
	last := 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case 'N', 'I', '-':
			for _, lit := range [...]string{"NaN", "Infinity", "-Infinity"} {
				if bytes.HasPrefix(b[i:], []byte(lit)) {
					out = append(out, b[last:i]...)
					out = append(out, "null"...)
					i += len(lit) - 1
					last = i + 1
					break
				}
			}
		}
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}
