/** Settings every workload takes from the command line. */
export interface WorkloadOptions {
  /** `--concurrency` of the worker. */
  concurrency: number;
  /** Where the worker writes its `--cpu-prof` profile (`run.js --profile DIR`). */
  profileDir?: string;
}
