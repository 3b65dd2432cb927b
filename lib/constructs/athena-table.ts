import { Aws, type CfnElement, Duration, Stack, Validations } from 'aws-cdk-lib';
import { CfnWorkGroup } from 'aws-cdk-lib/aws-athena';
import { CfnDatabase, CfnTable } from 'aws-cdk-lib/aws-glue';
import { ManagedPolicy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

export interface AthenaJsonTableProps {
  /** The bucket holding the data, and the query results under `resultsPrefix`. */
  readonly bucket: IBucket;
  /** Key prefix of the data, ending in "/": objects live under `<prefix><partitionKey>=<value>/`. */
  readonly prefix: string;
  /** The table's name in SQL. */
  readonly tableName: string;
  /** Columns of each JSON line (Hive types: string, bigint, …). */
  readonly columns: Record<string, string>;
  /** The one partition column, read from the key path; a query must name its value (injected projection). */
  readonly partitionKey: string;
  /** Where query results go, ending in "/". @default 'athena-results/' */
  readonly resultsPrefix?: string;
  /** A query that would scan more is cancelled, so one mistake cannot cost more than this. @default 10 GiB */
  readonly bytesScannedCutoffPerQuery?: number;
}

/**
 * SQL over JSON lines in S3 with Athena, the managed engine standing in for a Spark cluster: a Glue
 * database and table (partitions projected from the key path, so no crawler and no partition repair), a
 * workgroup that enforces encrypted results and a scan cutoff, and a managed policy that lets an operator
 * run queries on this table and nothing else. Nothing runs, and nothing bills, between queries.
 */
export class AthenaJsonTable extends Construct {
  public readonly databaseName: string;
  public readonly tableName: string;
  public readonly workGroupName: string;
  /** Attach to the operators (or the scheduler) that run the queries. */
  public readonly queryPolicy: ManagedPolicy;

  constructor(scope: Construct, id: string, props: AthenaJsonTableProps) {
    super(scope, id);
    if (!props.prefix.endsWith('/'))
      throw new Error(`${this.node.path}: prefix (${props.prefix}) must end in "/".`);
    const stack = Stack.of(this);
    const resultsPrefix = props.resultsPrefix ?? 'athena-results/';
    // Glue names: lower case, digits and underscores.
    this.databaseName = `${stack.stackName}_${id}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
    this.tableName = props.tableName;
    this.workGroupName = `${stack.stackName}-${id}`;
    const location = `s3://${props.bucket.bucketName}/${props.prefix}`;

    const database = new CfnDatabase(this, 'Database', {
      catalogId: Aws.ACCOUNT_ID,
      databaseInput: { name: this.databaseName, description: `${stack.stackName}: ${id}` },
    });
    const table = new CfnTable(this, 'Table', {
      catalogId: Aws.ACCOUNT_ID,
      databaseName: this.databaseName,
      tableInput: {
        name: this.tableName,
        tableType: 'EXTERNAL_TABLE',
        parameters: {
          classification: 'json',
          'projection.enabled': 'true',
          [`projection.${props.partitionKey}.type`]: 'injected',
          'storage.location.template': `${location}${props.partitionKey}=\${${props.partitionKey}}/`,
        },
        partitionKeys: [{ name: props.partitionKey, type: 'string' }],
        storageDescriptor: {
          location,
          columns: Object.entries(props.columns).map(([name, type]) => ({ name, type })),
          inputFormat: 'org.apache.hadoop.mapred.TextInputFormat',
          outputFormat: 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
          serdeInfo: { serializationLibrary: 'org.openx.data.jsonserde.JsonSerDe' },
        },
      },
    });
    table.addResourceDependency(database);

    new CfnWorkGroup(this, 'WorkGroup', {
      name: this.workGroupName,
      description: `${stack.stackName}: queries over ${this.databaseName}.${this.tableName}`,
      recursiveDeleteOption: true,
      workGroupConfiguration: {
        enforceWorkGroupConfiguration: true,
        publishCloudWatchMetricsEnabled: true,
        bytesScannedCutoffPerQuery: props.bytesScannedCutoffPerQuery ?? 10 * 1024 ** 3,
        engineVersion: { selectedEngineVersion: 'Athena engine version 3' },
        resultConfiguration: {
          outputLocation: `s3://${props.bucket.bucketName}/${resultsPrefix}`,
          encryptionConfiguration: { encryptionOption: 'SSE_S3' },
        },
      },
    });

    this.queryPolicy = new ManagedPolicy(this, 'QueryPolicy', {
      description: `Run Athena queries on ${this.databaseName}.${this.tableName} in workgroup ${this.workGroupName}`,
      statements: [
        new PolicyStatement({
          actions: [
            'athena:StartQueryExecution',
            'athena:GetQueryExecution',
            'athena:GetQueryResults',
            'athena:StopQueryExecution',
          ],
          resources: [
            stack.formatArn({ service: 'athena', resource: 'workgroup', resourceName: this.workGroupName }),
          ],
        }),
        new PolicyStatement({
          actions: ['glue:GetDatabase', 'glue:GetTable', 'glue:GetPartitions'],
          resources: [
            stack.formatArn({ service: 'glue', resource: 'catalog' }),
            stack.formatArn({ service: 'glue', resource: 'database', resourceName: this.databaseName }),
            stack.formatArn({
              service: 'glue',
              resource: 'table',
              resourceName: `${this.databaseName}/${this.tableName}`,
            }),
          ],
        }),
        new PolicyStatement({
          actions: ['s3:GetObject'],
          resources: [props.bucket.arnForObjects(`${props.prefix}*`)],
        }),
        new PolicyStatement({
          actions: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'],
          resources: [props.bucket.arnForObjects(`${resultsPrefix}*`)],
        }),
        new PolicyStatement({
          actions: ['s3:ListBucket', 's3:GetBucketLocation'],
          resources: [props.bucket.bucketArn],
        }),
      ],
    });
    const bucketId = stack.getLogicalId(props.bucket.node.defaultChild as CfnElement);
    for (const p of [props.prefix, resultsPrefix])
      Validations.of(this.queryPolicy).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${p}*]`,
        reason: `Athena reads every object under ${props.prefix} and writes results under ${resultsPrefix}, whose keys are not known at deploy time; the grant stops at ${p} of one bucket.`,
      });
  }
}

/** How long Athena's result files are kept before the bucket's lifecycle rule deletes them. */
export const ATHENA_RESULTS_EXPIRATION = Duration.days(7);
