// Worked example for docs/forking.md: a new pipeline stage on the kit.
// test/infra/forking-example.test.ts synthesizes it, so this example keeps working as the constructs change.
import path from 'node:path';
import { Duration } from 'aws-cdk-lib';
import type { PipelineStack } from '../../lib/constructs/pipeline-stack';
import { PipelineStage } from '../../lib/constructs/pipeline-stage';

/** Adds "count the words of each stored page" behind its own queue, DLQ, alarms, dashboard lines and outputs. */
export function addWordCountStage(pipeline: PipelineStack) {
  const counts = pipeline.addTable('WordCountTable', { partitionKey: 'url' });
  const stage = new PipelineStage(pipeline, 'WordCount', {
    entry: path.join(import.meta.dirname, 'word-count-handler.ts'),
    serviceName: 'word-counter',
    timeout: Duration.seconds(20),
  }).bindTable(counts, 'rw', 'COUNTS_TABLE');
  return { stage, counts };
}
