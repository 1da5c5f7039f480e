#!/usr/bin/env bash
# Podman for the tests of backend/docker: installs Podman, configures it for
# a machine without systemd and without CAP_SYS_RESOURCE, starts its
# Docker-compatible API service and exports DOCKER_HOST.
#
# Source it (". .ci/podman.sh") to get DOCKER_HOST in the calling shell, or
# run it ("bash .ci/podman.sh") and read the DOCKER_HOST=... line it prints
# last. Safe to run any number of times: each step checks whether it is done
# already. Needs root (as CI and the development machines run).
#
# When it cannot provide an engine it says why and returns non-zero; the
# docker backend's tests then skip with their own message, so a caller may
# go on: ". .ci/podman.sh || true".

sagehost_podman_setup() {
	local sock_path=/run/podman/podman.sock
	local sock="unix://$sock_path"
	local conf=/etc/containers/containers.conf.d/50-sagehost-ci.conf
	local log=/tmp/sagehost-podman-service.log

	# 1. Packages: podman itself, and runc as its OCI runtime (Debian 12's
	#    podman pulls in crun or runc; we name runc to be sure of which).
	#    curl talks to the service's socket below.
	if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1 ||
		! command -v curl >/dev/null 2>&1; then
		echo "podman.sh: installing podman, runc and curl" >&2
		if ! { apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc curl >/dev/null; }; then
			echo "podman.sh: apt-get install podman runc curl failed" >&2
			return 1
		fi
	fi

	# 2. Configuration, as a drop-in so that the distribution's files stay
	#    untouched (rewritten each time with the values that fit this host).
	#
	#    default_ulimits: Podman gives a rootful container nofile and nproc
	#    limits of 1048576 (capped at pid_max for nproc). Raising a hard
	#    limit above the one the engine itself has needs CAP_SYS_RESOURCE,
	#    which root lacks in these sandboxes, so every container then fails
	#    with "error setting rlimit type 7 (or 6): operation not permitted".
	#    We give containers the host's own hard limits instead (nproc no
	#    higher than pid_max, which is what conmon runs with), falling back
	#    to 1024 where a limit cannot be read.
	#    runtime = "runc": the runtime we installed and tested with.
	#    cgroup_manager = "cgroupfs": there is no systemd (PID 1 is not
	#    systemd) to create scopes through, so write cgroups directly.
	#    events_logger = "file": no journald either.
	local nofile nproc pidmax
	nofile=$(ulimit -Hn 2>/dev/null)
	nproc=$(ulimit -Hu 2>/dev/null)
	pidmax=$(cat /proc/sys/kernel/pid_max 2>/dev/null || echo 32768)
	case $nofile in '' | unlimited | *[!0-9]*) nofile=1024 ;; esac
	case $nproc in '' | unlimited | *[!0-9]*) nproc=$pidmax ;; esac
	if [ "$nproc" -gt "$pidmax" ]; then nproc=$pidmax; fi
	mkdir -p "$(dirname "$conf")"
	cat >"$conf.tmp" <<EOF
# Written by sagehost's .ci/podman.sh; see the comments there.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
	mv "$conf.tmp" "$conf"

	# 3. The API service: one per machine, left running in the background
	#    (--time=0: it never exits for being idle). An answering socket means
	#    one runs already. It starts in / : the conmon processes it spawns
	#    inherit its working directory, and fail ("write child: broken
	#    pipe") once that is gone, such as a checkout removed after a run.
	if ! curl -sf --max-time 5 --unix-socket "$sock_path" http://d/_ping >/dev/null 2>&1; then
		mkdir -p "$(dirname "$sock_path")"
		rm -f "$sock_path"
		echo "podman.sh: starting podman system service on $sock (log: $log)" >&2
		(cd / && nohup setsid podman system service --time=0 "$sock" >>"$log" 2>&1 </dev/null &)
		local i
		for i in $(seq 1 100); do
			if curl -sf --max-time 2 --unix-socket "$sock_path" http://d/_ping >/dev/null 2>&1; then
				break
			fi
			sleep 0.2
		done
		if ! curl -sf --max-time 5 --unix-socket "$sock_path" http://d/_ping >/dev/null 2>&1; then
			echo "podman.sh: the podman service did not answer on $sock; its log:" >&2
			tail -n 20 "$log" >&2
			return 1
		fi
	fi

	export DOCKER_HOST="$sock"
	echo "DOCKER_HOST=$DOCKER_HOST"
}

sagehost_podman_status=0
sagehost_podman_setup || sagehost_podman_status=$?
unset -f sagehost_podman_setup
# "return" when sourced, "exit" when run.
return $sagehost_podman_status 2>/dev/null || exit $sagehost_podman_status
