package xgboost

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// An objective decides two things at prediction time: how base_score (kept
// in output space in the model) becomes the starting margin, and how
// margins become predictions. Both are computed in float32 as XGBoost
// does, with glibc's expf (mathf.go).

type transform int

const (
	transformIdentity transform = iota
	transformSigmoid
	transformExp
	transformHinge
	transformSoftprob
	transformSoftmax
)

type baseKind int

const (
	baseIdentity baseKind = iota
	baseLogit
	baseLog
)

type objective struct {
	name       string
	base       baseKind
	transform  transform
	multiClass bool
	// selectable lists the keys of the container's selectable inference
	// output the objective supports (nil: the container refuses it).
	selectable []string
}

// Selectable inference keys, per objective, as the container defines them.
var (
	selRegression = []string{keyPredictedScore}
	selProb       = []string{keyPredictedLabel, keyLabels, keyProbability, keyProbabilities, keyRawScore, keyRawScores}
	selRaw        = []string{keyPredictedLabel, keyLabels, keyRawScore, keyRawScores}
)

var objectives = map[string]objective{
	"reg:squarederror":     {base: baseIdentity, transform: transformIdentity, selectable: selRegression},
	"reg:linear":           {base: baseIdentity, transform: transformIdentity}, // deprecated alias
	"reg:squaredlogerror":  {base: baseIdentity, transform: transformIdentity},
	"reg:pseudohubererror": {base: baseIdentity, transform: transformIdentity},
	"reg:absoluteerror":    {base: baseIdentity, transform: transformIdentity},
	"reg:quantileerror":    {base: baseIdentity, transform: transformIdentity},
	"reg:logistic":         {base: baseLogit, transform: transformSigmoid, selectable: selRegression},
	"binary:logistic":      {base: baseLogit, transform: transformSigmoid, selectable: selProb},
	"binary:logitraw":      {base: baseIdentity, transform: transformIdentity, selectable: selRaw},
	"binary:hinge":         {base: baseIdentity, transform: transformHinge, selectable: selRaw},
	"multi:softprob":       {base: baseIdentity, transform: transformSoftprob, multiClass: true, selectable: selProb},
	"multi:softmax":        {base: baseIdentity, transform: transformSoftmax, multiClass: true, selectable: selRaw},
	"count:poisson":        {base: baseLog, transform: transformExp},
	"reg:gamma":            {base: baseLog, transform: transformExp, selectable: selRegression},
	"reg:tweedie":          {base: baseLog, transform: transformExp, selectable: selRegression},
	"rank:pairwise":        {base: baseIdentity, transform: transformIdentity},
	"rank:ndcg":            {base: baseIdentity, transform: transformIdentity},
	"rank:map":             {base: baseIdentity, transform: transformIdentity},
	"survival:cox":         {base: baseLog, transform: transformExp},
	"survival:aft":         {base: baseLog, transform: transformExp},
}

// Objectives lists the objectives the package predicts for.
func Objectives() []string {
	var names []string
	for n := range objectives {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func lookupObjective(name string) (*objective, error) {
	o, ok := objectives[name]
	if !ok {
		if name == "" {
			return nil, fmt.Errorf("the model names no objective")
		}
		return nil, fmt.Errorf("unsupported objective %q (supported: %s)", name, strings.Join(Objectives(), ", "))
	}
	o.name = name
	return &o, nil
}

// probToMargin maps base_score to margin space (XGBoost's ProbToMargin).
func (o *objective) probToMargin(s float32) (float32, error) {
	switch o.base {
	case baseLogit:
		if !(s > 0 && s < 1) {
			return 0, fmt.Errorf("base_score %v is outside (0,1), which %s requires", s, o.name)
		}
		return -logf(1/s - 1), nil
	case baseLog:
		if !(s > 0) {
			return 0, fmt.Errorf("base_score %v is not positive, which %s requires", s, o.name)
		}
		return logf(s), nil
	}
	return s, nil
}

// outputWidth is the number of values per row after the transform, for a
// model with the given number of output groups.
func (o *objective) outputWidth(groups int) int {
	if o.transform == transformSoftmax {
		return 1
	}
	return groups
}

// apply transforms the margins of rows rows of groups values each, in
// place; for multi:softmax the class indexes end up in the first rows
// entries.
func (o *objective) apply(v []float32, rows, groups int) {
	switch o.transform {
	case transformSigmoid:
		for i := range v[:rows*groups] {
			v[i] = sigmoid(v[i])
		}
	case transformExp:
		for i := range v[:rows*groups] {
			v[i] = expf(v[i])
		}
	case transformHinge:
		for i := range v[:rows*groups] {
			if v[i] > 0 {
				v[i] = 1
			} else {
				v[i] = 0
			}
		}
	case transformSoftprob:
		for r := 0; r < rows; r++ {
			softmax(v[r*groups : (r+1)*groups])
		}
	case transformSoftmax:
		for r := 0; r < rows; r++ {
			row := v[r*groups : (r+1)*groups]
			best := 0
			for k := 1; k < len(row); k++ {
				if row[k] > row[best] {
					best = k
				}
			}
			v[r] = float32(best) // r <= r*groups: never overwrites an unread row
		}
	}
}

// sigmoid is XGBoost's common::Sigmoid: 1 / (1 + expf(-x)) in float32.
func sigmoid(x float32) float32 {
	return 1 / (1 + expf(-x))
}

// softmax is XGBoost's common::Softmax: exponentials of the differences
// from the largest margin, normalized by their sum accumulated in float64.
func softmax(row []float32) {
	wmax := row[0]
	for _, x := range row[1:] {
		wmax = float32(math.Max(float64(x), float64(wmax)))
	}
	var sum float64
	for i, x := range row {
		row[i] = expf(x - wmax)
		sum += float64(row[i])
	}
	s := float32(sum)
	for i := range row {
		row[i] /= s
	}
}
