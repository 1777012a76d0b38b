/* The `slmops` command's verbs: each is a thin shell over library calls in a
 * file of its own (cli/VERB.c), called with argv[0] = the verb name. */
#ifndef SLMOPS_CLI_VERBS_H
#define SLMOPS_CLI_VERBS_H

/* Each returns the process exit status. */
int slm_cli_plugins(int argc, char **argv);
int slm_cli_devices(int argc, char **argv);
int slm_cli_selftest(int argc, char **argv);
int slm_cli_info(int argc, char **argv);
int slm_cli_convert(int argc, char **argv);
int slm_cli_tokenize(int argc, char **argv);
int slm_cli_generate(int argc, char **argv);
int slm_cli_chat(int argc, char **argv);
int slm_cli_eval(int argc, char **argv);
int slm_cli_quantize(int argc, char **argv);
int slm_cli_merge(int argc, char **argv);
int slm_cli_init(int argc, char **argv);
int slm_cli_bench(int argc, char **argv);
int slm_cli_serve(int argc, char **argv);
int slm_cli_finetune(int argc, char **argv);
int slm_cli_models(int argc, char **argv);
int slm_cli_distill(int argc, char **argv);
int slm_cli_pipeline(int argc, char **argv);

#endif
