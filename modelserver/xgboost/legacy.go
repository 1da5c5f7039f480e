package xgboost

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The legacy binary model format: what XGBoost before 2.1 writes when the
// file name ends in neither .json nor .ubj, and so what SageMaker's XGBoost
// algorithm container (1.3 to 1.7) saves as xgboost-model. It is a dump of
// C structs, little-endian:
//
//	"binf"                              optional header
//	LearnerModelParamLegacy             136 bytes: base_score f32, num_feature u32,
//	                                    num_class i32, contain_extra_attrs i32,
//	                                    contain_eval_metrics i32, major u32, minor u32,
//	                                    num_target u32, ..., reserved
//	objective, booster name             u64 length + bytes each
//	gbtree:  GBTreeModelParam           160 bytes: num_trees i32, num_parallel_tree i32,
//	                                    num_feature i32, pad, num_pbuffer i64,
//	                                    num_output_group i32, size_leaf_vector i32, reserved
//	         per tree: TreeParam        148 bytes: num_roots, num_nodes, num_deleted,
//	                                    max_depth, num_feature, size_leaf_vector, reserved
//	                   nodes            20 bytes each: parent i32, left i32, right i32,
//	                                    sindex u32 (bit 31: default left), value f32
//	                   node stats       16 bytes each (unused here)
//	         tree_info                  i32 per tree
//	dart:    as gbtree, then weight_drop (u64 count + f32s)
//	gblinear: 136-byte param, then weights (u64 count + f32s)
//	attributes (if contain_extra_attrs) u64 count, then (key, value) strings
//
// What follows the attributes (eval metrics, saved configuration) does not
// affect prediction and is not read.

const (
	legacyLearnerParamSize = 136
	legacyGBTreeParamSize  = 160
	legacyTreeParamSize    = 148
	legacyNodeSize         = 20
	legacyNodeStatSize     = 16
	legacyLinearParamSize  = 136
	legacyDeletedNode      = math.MaxUint32
)

type legacyReader struct {
	b   []byte
	pos int
}

func (r *legacyReader) take(n int, what string) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.pos {
		return nil, fmt.Errorf("truncated at byte %d reading %s", r.pos, what)
	}
	p := r.b[r.pos : r.pos+n]
	r.pos += n
	return p, nil
}

func (r *legacyReader) u64(what string) (uint64, error) {
	p, err := r.take(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(p), nil
}

func (r *legacyReader) str(what string, max int) (string, error) {
	n, err := r.u64(what)
	if err != nil {
		return "", err
	}
	if n > uint64(max) {
		return "", fmt.Errorf("%s is %d bytes long: not a model in the legacy binary format", what, n)
	}
	p, err := r.take(int(n), what)
	return string(p), err
}

func (r *legacyReader) floats(what string) ([]float32, error) {
	n, err := r.u64(what)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(r.b)-r.pos)/4 {
		return nil, fmt.Errorf("%s claims %d values, more than the file holds", what, n)
	}
	p, _ := r.take(int(n)*4, what)
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
	}
	return out, nil
}

func le32(p []byte, off int) int32 { return int32(binary.LittleEndian.Uint32(p[off:])) }

// parseLegacyModel decodes the legacy binary format.
func parseLegacyModel(b []byte) (*rawModel, error) {
	r := &legacyReader{b: b}
	if len(b) >= 4 && string(b[:4]) == "binf" {
		r.pos = 4
	}
	mp, err := r.take(legacyLearnerParamSize, "the learner parameters")
	if err != nil {
		return nil, err
	}
	raw := &rawModel{format: "binary", attributes: map[string]string{}}
	raw.baseScore = []float32{math.Float32frombits(binary.LittleEndian.Uint32(mp[0:]))}
	raw.numFeature = int(binary.LittleEndian.Uint32(mp[4:]))
	raw.numClass = int(le32(mp, 8))
	containExtraAttrs := le32(mp, 12) != 0
	major, minor := binary.LittleEndian.Uint32(mp[20:]), binary.LittleEndian.Uint32(mp[24:])
	if major != 0 || minor != 0 {
		raw.version = fmt.Sprintf("%d.%d", major, minor)
	}
	// num_target came with XGBoost 1.6 (offset 28); older files have a zero there.
	raw.numTarget = int(binary.LittleEndian.Uint32(mp[28:]))
	if major == 0 || (major == 1 && minor < 6) || raw.numTarget == 0 {
		raw.numTarget = 1
	}
	if raw.numFeature < 0 || raw.numFeature > 1<<28 || raw.numClass < 0 || raw.numClass > 1<<20 || raw.numTarget > 1<<20 {
		return nil, errors.New("implausible learner parameters: not a model in the legacy binary format")
	}
	if raw.objective, err = r.str("the objective name", 64); err != nil {
		return nil, err
	}
	if raw.booster, err = r.str("the booster name", 64); err != nil {
		return nil, err
	}
	switch raw.booster {
	case "gbtree", "dart":
		if err := r.gbtree(raw); err != nil {
			return nil, err
		}
		if raw.booster == "dart" && len(raw.trees) > 0 {
			if raw.weightDrop, err = r.floats("the dart weight_drop"); err != nil {
				return nil, err
			}
		}
	case "gblinear":
		if _, err := r.take(legacyLinearParamSize, "the gblinear parameters"); err != nil {
			return nil, err
		}
		if raw.linearWeights, err = r.floats("the gblinear weights"); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unsupported booster %q (supported: gbtree, dart, gblinear)", raw.booster)
	}
	if containExtraAttrs {
		n, err := r.u64("the attribute count")
		if err != nil {
			return nil, err
		}
		if n > uint64(len(b)-r.pos)/16 {
			return nil, fmt.Errorf("attribute count %d exceeds the file", n)
		}
		for i := 0; i < int(n); i++ {
			k, err := r.str("an attribute name", len(b))
			if err != nil {
				return nil, err
			}
			v, err := r.str("an attribute value", len(b))
			if err != nil {
				return nil, err
			}
			raw.attributes[k] = v
		}
	}
	return raw, nil
}

func (r *legacyReader) gbtree(raw *rawModel) error {
	gp, err := r.take(legacyGBTreeParamSize, "the gbtree parameters")
	if err != nil {
		return err
	}
	numTrees := le32(gp, 0)
	raw.numParallelTree = int(le32(gp, 4))
	if raw.numParallelTree == 0 {
		raw.numParallelTree = 1 // "deprecated num_roots" in old files
	}
	if numPBuffer := int64(binary.LittleEndian.Uint64(gp[16:])); numPBuffer != 0 {
		return errors.New("model from XGBoost before 0.7 (with a prediction buffer) is not supported")
	}
	if sizeLeaf := le32(gp, 28); sizeLeaf > 1 {
		return fmt.Errorf("multi-output trees (size_leaf_vector %d) are not supported", sizeLeaf)
	}
	if numTrees < 0 || int(numTrees) > (len(r.b)-r.pos)/legacyTreeParamSize {
		return fmt.Errorf("%d trees claimed, more than the %d remaining bytes hold (truncated, or not a model)", numTrees, len(r.b)-r.pos)
	}
	raw.trees = make([]rawTree, numTrees)
	for i := range raw.trees {
		t, err := r.tree()
		if err != nil {
			return fmt.Errorf("tree %d: %w", i, err)
		}
		raw.trees[i] = t
	}
	p, err := r.take(4*int(numTrees), "tree_info")
	if err != nil {
		return err
	}
	raw.treeInfo = make([]int32, numTrees)
	for i := range raw.treeInfo {
		raw.treeInfo[i] = le32(p, 4*i)
	}
	return nil
}

func (r *legacyReader) tree() (rawTree, error) {
	tp, err := r.take(legacyTreeParamSize, "the tree parameters")
	if err != nil {
		return rawTree{}, err
	}
	n := int(le32(tp, 4))
	if sizeLeaf := le32(tp, 20); sizeLeaf > 1 {
		return rawTree{}, fmt.Errorf("multi-output tree (size_leaf_vector %d) is not supported", sizeLeaf)
	}
	if n <= 0 || n > (len(r.b)-r.pos)/(legacyNodeSize+legacyNodeStatSize) {
		return rawTree{}, fmt.Errorf("%d nodes claimed, more than the %d remaining bytes hold (truncated, or not a model)", n, len(r.b)-r.pos)
	}
	p, _ := r.take(n*legacyNodeSize, "the nodes")
	if _, err := r.take(n*legacyNodeStatSize, "the node statistics"); err != nil {
		return rawTree{}, err
	}
	t := rawTree{
		left:        make([]int32, n),
		right:       make([]int32, n),
		feature:     make([]int64, n),
		cond:        make([]float32, n),
		defaultLeft: make([]bool, n),
	}
	for i := 0; i < n; i++ {
		q := p[i*legacyNodeSize:]
		sindex := binary.LittleEndian.Uint32(q[12:])
		t.left[i] = le32(q, 4)
		t.right[i] = le32(q, 8)
		if sindex == legacyDeletedNode {
			// A deleted node: unreachable, kept as a leaf so that it is inert.
			t.left[i], t.right[i] = -1, -1
		}
		t.feature[i] = int64(sindex & (1<<31 - 1))
		t.defaultLeft[i] = sindex>>31 != 0
		t.cond[i] = math.Float32frombits(binary.LittleEndian.Uint32(q[16:]))
	}
	return t, nil
}
