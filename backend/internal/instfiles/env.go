package instfiles

import "sort"

// EnvList turns a container's environment into the sorted "NAME=value"
// list that a process or an engine takes.
func EnvList(env map[string]string) []string {
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)
	return list
}
