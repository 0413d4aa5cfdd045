// Sends events to fake-eventhubs with the official EventHubProducerClient, the way an application would:
// hub properties through $management, a batch with a partition key, a batch to partition "1".
// Usage: FAKE_EVENTHUBS_CONNECTION_STRING="Endpoint=sb://localhost:PORT/;..." node send.mjs
// Prints one JSON line with what the service reported and exits 0, or prints the error and exits 1.
import net from "node:net";
import { EventHubProducerClient } from "@azure/event-hubs";

// Connect the way Debian 12's Node.js 18 does by default: to the first address the host name resolves to,
// with no fallback to the other family. Newer Node.js tries both (autoSelectFamily), which would hide a
// server that listens on 127.0.0.1 only while localhost resolves to ::1 first.
if (typeof net.setDefaultAutoSelectFamily === "function") net.setDefaultAutoSelectFamily(false);

const connectionString = process.env.FAKE_EVENTHUBS_CONNECTION_STRING;
if (!connectionString) {
  console.error("FAKE_EVENTHUBS_CONNECTION_STRING is not set");
  process.exit(2);
}

const producer = new EventHubProducerClient(connectionString, {
  retryOptions: { maxRetries: 1, timeoutInMs: 20000 },
});

try {
  const hub = await producer.getEventHubProperties();
  const partition1Before = await producer.getPartitionProperties("1");

  const keyed = await producer.createBatch({ partitionKey: "customer-42" });
  for (let i = 0; i < 3; i++) {
    const added = keyed.tryAdd({
      body: { order: i, note: "keyed" },
      contentType: "application/json",
      properties: { "redis-id": `1700000000000-${i}`, "redis-stream": "orders" },
    });
    if (!added) throw new Error(`event ${i} did not fit in the batch`);
  }
  await producer.sendBatch(keyed);

  await producer.sendBatch(
    [
      { body: "plain text to partition 1", properties: { "redis-id": "1700000000001-0" } },
      { body: new Uint8Array([0xff, 0x00, 0x41]), properties: { "redis-id": "1700000000001-1" } },
    ],
    { partitionId: "1" },
  );

  const partition1After = await producer.getPartitionProperties("1");
  console.log(
    JSON.stringify({
      name: hub.name,
      partitionIds: hub.partitionIds,
      partition1EmptyBefore: partition1Before.isEmpty,
      partition1LastSequenceNumber: partition1After.lastEnqueuedSequenceNumber,
      sent: 5,
    }),
  );
  await producer.close();
  process.exit(0);
} catch (error) {
  console.error(`send failed: ${error?.name}: ${error?.message}`);
  await producer.close().catch(() => {});
  process.exit(1);
}
