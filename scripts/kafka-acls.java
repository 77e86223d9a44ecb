// Creates ACLs on a secured test cluster for scripts/kafka start --secure,
// through Kafka's own Admin client (on the classpath scripts/kafka fetched).
// Run with Java's source launcher (JDK 11+):
//
//   java -cp "$libs/*" scripts/kafka-acls.java CLIENT_PROPERTIES ACL_FILE
//
// CLIENT_PROPERTIES: a Java client properties file (bootstrap.servers and
// the security settings of a super user). ACL_FILE: one ACL per line,
//   principal resource-type pattern-type name operation
// e.g. `User:worker TOPIC LITERAL boxwatch.alerts WRITE`; `#` starts a
// comment. Every ACL allows, for any host. Prints how many it created and
// exits 1 with the reason when the cluster refuses.
import java.io.FileInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class KafkaAcls {
  public static void main(String[] args) throws Exception {
    if (args.length != 2) {
      System.err.println("usage: kafka-acls.java CLIENT_PROPERTIES ACL_FILE");
      System.exit(2);
    }
    Properties props = new Properties();
    try (FileInputStream in = new FileInputStream(args[0])) {
      props.load(in);
    }
    List<AclBinding> bindings = new ArrayList<>();
    int lineNo = 0;
    for (String raw : Files.readAllLines(Path.of(args[1]))) {
      ++lineNo;
      String line = raw.replaceAll("#.*", "").trim();
      if (line.isEmpty()) continue;
      String[] f = line.split("\\s+");
      if (f.length != 5) {
        System.err.println(args[1] + ":" + lineNo + ": expected 5 fields, got " + f.length);
        System.exit(2);
      }
      bindings.add(new AclBinding(
          new ResourcePattern(ResourceType.fromString(f[1]), f[3], PatternType.fromString(f[2])),
          new AccessControlEntry(f[0], "*", AclOperation.fromString(f[4]), AclPermissionType.ALLOW)));
    }
    try (Admin admin = Admin.create(props)) {
      admin.createAcls(bindings).all().get(60, TimeUnit.SECONDS);
    } catch (Exception e) {
      System.err.println("creating ACLs failed: " + e);
      System.exit(1);
    }
    System.out.println("created " + bindings.size() + " ACLs");
  }
}
