/* SPDX-License-Identifier: MIT */
/*
 * The wirepath commands: one entry point per command, each in its own file,
 * called by the command table in wirepath.c. The helpers the commands share
 * are in util.h, the protocol the bench and the stub server speak in
 * stub_proto.h. Everything here is tool code: it uses only the public API.
 */
#ifndef WP_TOOLS_H
#define WP_TOOLS_H

/* argv[0] is the command name; each returns the process exit status. */
int cmd_probe(int argc, char **argv);  /* tools/probe.c */
int cmd_serve(int argc, char **argv);  /* tools/serve.c */
int cmd_bench(int argc, char **argv);  /* tools/bench.c */
int cmd_policy(int argc, char **argv); /* tools/policy.c */
int cmd_soak(int argc, char **argv);   /* tools/soak.c */

#endif
