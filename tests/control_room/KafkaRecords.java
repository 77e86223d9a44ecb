// A tiny Kafka client for control_room_test.py, on the Kafka client jars
// that scripts/kafka fetched (the broker's own classpath): boxwatch has no
// command that reads a topic or produces one hand-made record.
//
//   java -cp 'LIBS/*:CLASSES' KafkaRecords produce BOOTSTRAP TOPIC KEY TIMESTAMP_MS [HEADER=VALUE ...] < value
//       One record, keyed (the Java client's default partitioner, as every
//       boxwatch producer uses), stamped with TIMESTAMP_MS (CreateTime), the
//       value read from stdin as bytes. Prints {"partition":P,"offset":O}.
//   java -cp 'LIBS/*:CLASSES' KafkaRecords dump BOOTSTRAP TOPIC
//       Every committed record of TOPIC, all partitions, from the beginning
//       to the end offsets as of the start, one JSON line each:
//       {"partition":P,"offset":O,"timestamp":T,"key_b64":"...","value_b64":"..."}
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class KafkaRecords {
  public static void main(String[] args) throws Exception {
    if (args.length >= 5 && args[0].equals("produce")) {
      produce(args);
    } else if (args.length == 3 && args[0].equals("dump")) {
      dump(args[1], args[2]);
    } else {
      System.err.println("usage: KafkaRecords produce BOOTSTRAP TOPIC KEY TIMESTAMP_MS [HEADER=VALUE ...] < value\n"
          + "       KafkaRecords dump BOOTSTRAP TOPIC");
      System.exit(2);
    }
  }

  static void produce(String[] a) throws Exception {
    byte[] value = System.in.readAllBytes();
    Properties p = new Properties();
    p.put("bootstrap.servers", a[1]);
    p.put("acks", "all");
    p.put("enable.idempotence", "true");
    p.put("key.serializer", ByteArraySerializer.class.getName());
    p.put("value.serializer", ByteArraySerializer.class.getName());
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
      ProducerRecord<byte[], byte[]> r = new ProducerRecord<>(a[2], null, Long.parseLong(a[4]),
          a[3].getBytes(StandardCharsets.UTF_8), value);
      for (int i = 5; i < a.length; i++) {
        int eq = a[i].indexOf('=');
        if (eq <= 0) throw new IllegalArgumentException("header " + a[i] + " is not NAME=VALUE");
        r.headers().add(a[i].substring(0, eq), a[i].substring(eq + 1).getBytes(StandardCharsets.UTF_8));
      }
      RecordMetadata m = producer.send(r).get();
      System.out.println("{\"partition\":" + m.partition() + ",\"offset\":" + m.offset() + "}");
    }
  }

  static void dump(String bootstrap, String topic) {
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    p.put("isolation.level", "read_committed");
    p.put("enable.auto.commit", "false");
    p.put("key.deserializer", ByteArrayDeserializer.class.getName());
    p.put("value.deserializer", ByteArrayDeserializer.class.getName());
    Base64.Encoder b64 = Base64.getEncoder();
    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
      List<TopicPartition> parts = new ArrayList<>();
      for (PartitionInfo info : consumer.partitionsFor(topic, Duration.ofSeconds(30)))
        parts.add(new TopicPartition(topic, info.partition()));
      consumer.assign(parts);
      consumer.seekToBeginning(parts);
      Map<TopicPartition, Long> end = consumer.endOffsets(parts, Duration.ofSeconds(30));
      long deadline = System.currentTimeMillis() + 60000;
      while (System.currentTimeMillis() < deadline) {
        boolean done = true;
        for (TopicPartition tp : parts)
          if (consumer.position(tp, Duration.ofSeconds(30)) < end.get(tp)) done = false;
        if (done) return;
        for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
          System.out.println("{\"partition\":" + r.partition() + ",\"offset\":" + r.offset() + ",\"timestamp\":"
              + r.timestamp() + ",\"key_b64\":\"" + (r.key() == null ? "" : b64.encodeToString(r.key()))
              + "\",\"value_b64\":\"" + (r.value() == null ? "" : b64.encodeToString(r.value())) + "\"}");
        }
      }
      System.err.println("dump: the end offsets were not reached within 60 s");
      System.exit(1);
    }
  }
}
