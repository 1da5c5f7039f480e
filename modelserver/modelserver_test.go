package modelserver

import "testing"

func TestLookup(t *testing.T) {
	for image, want := range map[string]string{
		"sagehost/xgboost":        "xgboost",
		"sagehost/example:latest": "example",
		"sagehost/echo":           "echo",
		"683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1":                                                                           "xgboost",
		"246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-xgboost:1.5-1-cpu-py3":                                                                   "xgboost",
		"811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:latest":                                                                                    "xgboost",
		"390948362332.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-xgboost:1.7-1":                                                                       "xgboost",
		"492215442770.dkr.ecr.eu-central-1.amazonaws.com/sagemaker-xgboost@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef": "xgboost",
	} {
		if got, ok := Lookup(image); !ok || got != want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", image, got, ok, want)
		}
	}
	for _, image := range []string{
		"sagehost/nope", "/usr/bin/model", "xgboost:latest", "myrepo/sagemaker-xgboost:1.7-1",
		"683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1",
		"683313688378.dkr.ecr.us-east-1.amazonaws.com/evil/sagemaker-xgboost:1",
	} {
		if name, ok := Lookup(image); ok {
			t.Errorf("Lookup(%q) = %q, want no built-in", image, name)
		}
	}
}
