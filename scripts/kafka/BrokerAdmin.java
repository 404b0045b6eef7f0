// Sets up the test broker for the tests, the demo and the benchmarks: creates
// topics (with topic configs), ALLOW and DENY ACLs, user quotas and SCRAM users over the
// broker's PLAINTEXT listener. Prints one result line; on failure prints one
// line to stderr and exits non-zero.

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterClientQuotasOptions;
import org.apache.kafka.clients.admin.AlterUserScramCredentialsOptions;
import org.apache.kafka.clients.admin.CreateAclsOptions;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialDeletion;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.quota.ClientQuotaAlteration;
import org.apache.kafka.common.quota.ClientQuotaEntity;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class BrokerAdmin {
    private static final int TIMEOUT_MS = 15_000;
    private static final int SCRAM_ITERATIONS = 4096;

    private static final String USAGE = String.join("\n",
            "usage: BrokerAdmin <bootstrap> create-topic <name> <partitions> [config=value ...]",
            "       BrokerAdmin <bootstrap> create-topics <name:partitions> [<name:partitions> ...]",
            "       BrokerAdmin <bootstrap> allow|deny <principal> <operation> <topic>",
            "       BrokerAdmin <bootstrap> quota <user> <quota key> <value>",
            "       BrokerAdmin <bootstrap> scram <user> <SCRAM-SHA-256|SCRAM-SHA-512> <password>",
            "       BrokerAdmin <bootstrap> delete-scram <user> <mechanism>");

    /** A mistake in the command line. */
    private static final class Usage extends Exception {
        private static final long serialVersionUID = 1L;

        Usage(String message) {
            super(message);
        }
    }

    /** A failure already described in one line. */
    private static final class Failed extends Exception {
        private static final long serialVersionUID = 1L;

        Failed(String message) {
            super(message);
        }
    }

    public static void main(String[] args) {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        // An unreachable broker is reported once, as the timeout, not per retry.
        System.setProperty("org.slf4j.simpleLogger.log.org.apache.kafka.clients.NetworkClient", "error");
        if (args.length < 2) {
            System.err.println(USAGE);
            System.exit(2);
        }
        String command = args[1];
        List<String> rest = List.of(args).subList(2, args.length);
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.SECURITY_PROTOCOL_CONFIG, "PLAINTEXT");
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "broker-admin");
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, TIMEOUT_MS);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, TIMEOUT_MS);
        int status;
        Admin admin = null;
        try {
            admin = Admin.create(props);
            System.out.println(run(admin, command, rest));
            status = 0;
        } catch (Usage e) {
            System.err.println("BrokerAdmin " + command + ": " + e.getMessage() + " (run BrokerAdmin without arguments for usage)");
            status = 2;
        } catch (Exception e) {
            System.err.println("BrokerAdmin " + command + " failed: " + describe(e));
            status = 1;
        } finally {
            if (admin != null) {
                admin.close(java.time.Duration.ofSeconds(5));
            }
        }
        System.exit(status);
    }

    private static String run(Admin admin, String command, List<String> args) throws Exception {
        switch (command) {
            case "create-topic": {
                if (args.size() < 2) {
                    throw new Usage("needs <name> <partitions> [config=value ...]");
                }
                Map<String, String> configs = new LinkedHashMap<>();
                for (String setting : args.subList(2, args.size())) {
                    int eq = setting.indexOf('=');
                    if (eq <= 0) {
                        throw new Usage("topic config \"" + setting + "\" is not config=value");
                    }
                    configs.put(setting.substring(0, eq), setting.substring(eq + 1));
                }
                NewTopic topic = new NewTopic(args.get(0), partitions(args.get(1)), (short) 1).configs(configs);
                return createTopics(admin, List.of(topic));
            }
            case "create-topics": {
                if (args.isEmpty()) {
                    throw new Usage("needs at least one <name:partitions>");
                }
                List<NewTopic> topics = new ArrayList<>();
                for (String spec : args) {
                    int colon = spec.lastIndexOf(':');
                    if (colon <= 0) {
                        throw new Usage("\"" + spec + "\" is not <name:partitions>");
                    }
                    topics.add(new NewTopic(spec.substring(0, colon), partitions(spec.substring(colon + 1)), (short) 1));
                }
                return createTopics(admin, topics);
            }
            case "allow":
            case "deny": {
                expect(args, 3, "<principal> <operation> <topic>");
                String principal = args.get(0);
                if (principal.indexOf(':') <= 0) {
                    throw new Usage("principal \"" + principal + "\" is not <type>:<name>, e.g. User:denied");
                }
                AclOperation operation = AclOperation.fromString(args.get(1));
                if (operation == AclOperation.UNKNOWN || operation == AclOperation.ANY) {
                    throw new Usage("unknown operation " + args.get(1));
                }
                AclPermissionType permission =
                        command.equals("allow") ? AclPermissionType.ALLOW : AclPermissionType.DENY;
                AclBinding acl = new AclBinding(
                        new ResourcePattern(ResourceType.TOPIC, args.get(2), PatternType.LITERAL),
                        new AccessControlEntry(principal, "*", operation, permission));
                await(admin.createAcls(List.of(acl), new CreateAclsOptions().timeoutMs(TIMEOUT_MS)).all());
                return (command.equals("allow") ? "allowed " : "denied ") + principal + " " + operation
                        + " on topic " + args.get(2);
            }
            case "quota": {
                expect(args, 3, "<user> <quota key> <value>");
                double value;
                try {
                    value = Double.parseDouble(args.get(2));
                } catch (NumberFormatException e) {
                    throw new Usage("quota value " + args.get(2) + " is not a number");
                }
                ClientQuotaEntity user = new ClientQuotaEntity(Map.of(ClientQuotaEntity.USER, args.get(0)));
                ClientQuotaAlteration alteration = new ClientQuotaAlteration(user,
                        List.of(new ClientQuotaAlteration.Op(args.get(1), value)));
                await(admin.alterClientQuotas(List.of(alteration),
                        new AlterClientQuotasOptions().timeoutMs(TIMEOUT_MS)).all());
                return "set " + args.get(1) + "=" + args.get(2) + " for user " + args.get(0);
            }
            case "scram": {
                expect(args, 3, "<user> <SCRAM-SHA-256|SCRAM-SHA-512> <password>");
                ScramMechanism mechanism = mechanism(args.get(1));
                UserScramCredentialUpsertion upsert = new UserScramCredentialUpsertion(args.get(0),
                        new ScramCredentialInfo(mechanism, SCRAM_ITERATIONS), args.get(2));
                await(admin.alterUserScramCredentials(List.of(upsert),
                        new AlterUserScramCredentialsOptions().timeoutMs(TIMEOUT_MS)).all());
                return "set " + mechanism.mechanismName() + " credentials for user " + args.get(0);
            }
            case "delete-scram": {
                expect(args, 2, "<user> <mechanism>");
                ScramMechanism mechanism = mechanism(args.get(1));
                await(admin.alterUserScramCredentials(List.of(new UserScramCredentialDeletion(args.get(0), mechanism)),
                        new AlterUserScramCredentialsOptions().timeoutMs(TIMEOUT_MS)).all());
                return "deleted " + mechanism.mechanismName() + " credentials of user " + args.get(0);
            }
            default:
                throw new Usage("unknown command");
        }
    }

    /** Creates the topics; one that already exists is not a failure. */
    private static String createTopics(Admin admin, List<NewTopic> topics) throws Exception {
        CreateTopicsResult result = admin.createTopics(topics, new CreateTopicsOptions().timeoutMs(TIMEOUT_MS));
        List<String> created = new ArrayList<>();
        List<String> existing = new ArrayList<>();
        for (NewTopic topic : topics) {
            try {
                await(result.values().get(topic.name()));
                created.add(topic.name() + " (" + topic.numPartitions() + (topic.numPartitions() == 1 ? " partition" : " partitions")
                        + (topic.configs() == null || topic.configs().isEmpty() ? "" : ", " + topic.configs()) + ")");
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    throw new Failed("topic " + topic.name() + ": " + describe(e));
                }
                existing.add(topic.name());
            }
        }
        List<String> parts = new ArrayList<>();
        if (!created.isEmpty()) {
            parts.add("created topic " + String.join(", ", created));
        }
        if (!existing.isEmpty()) {
            parts.add("topic " + String.join(", ", existing) + (existing.size() == 1 ? " exists" : " exist"));
        }
        return String.join("; ", parts);
    }

    private static void await(KafkaFuture<?> future) throws ExecutionException, InterruptedException, TimeoutException {
        // The options bound the request; this also bounds the wait if the broker never answers.
        future.get(TIMEOUT_MS + 5_000, TimeUnit.MILLISECONDS);
    }

    private static int partitions(String text) throws Usage {
        try {
            int n = Integer.parseInt(text);
            if (n > 0) {
                return n;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new Usage("partitions \"" + text + "\" is not a positive number");
    }

    private static ScramMechanism mechanism(String name) throws Usage {
        ScramMechanism mechanism = ScramMechanism.fromMechanismName(name);
        if (mechanism == ScramMechanism.UNKNOWN) {
            throw new Usage("unknown SCRAM mechanism " + name + " (SCRAM-SHA-256 or SCRAM-SHA-512)");
        }
        return mechanism;
    }

    private static void expect(List<String> args, int count, String shape) throws Usage {
        if (args.size() != count) {
            throw new Usage("needs " + shape);
        }
    }

    /** The root cause as one line. */
    private static String describe(Throwable e) {
        if (e instanceof Failed) {
            return e.getMessage();
        }
        Throwable cause = e;
        while ((cause instanceof ExecutionException || cause.getMessage() == null) && cause.getCause() != null) {
            cause = cause.getCause();
        }
        String message = cause.getMessage() == null ? "" : ": " + cause.getMessage();
        return (cause.getClass().getSimpleName() + message).replaceAll("\\s*\\R\\s*", " ");
    }
}
