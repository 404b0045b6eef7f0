// The test broker's stand-in for Amazon MSK's IAM authentication: a
// SASL/OAUTHBEARER server callback handler that accepts only MSK IAM tokens
// (SigV4-presigned kafka-cluster:Connect URLs) signed with the access key
// named in its listener's JAAS entry, and gives each session the token's
// lifetime so the broker ends it when the token expires.

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.time.format.ResolverStyle;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import javax.security.auth.callback.Callback;
import javax.security.auth.callback.UnsupportedCallbackException;
import javax.security.auth.login.AppConfigurationEntry;

import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.security.auth.AuthenticateCallbackHandler;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerExtensionsValidatorCallback;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerToken;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallback;

public class MskIamValidator implements AuthenticateCallbackHandler {
    private static final String ACTION = "kafka-cluster:Connect";
    private static final String ALGORITHM = "AWS4-HMAC-SHA256";
    private static final String SERVICE = "kafka-cluster";
    private static final String TERMINATOR = "aws4_request";
    private static final long MAX_FUTURE_SKEW_MS = 5 * 60 * 1000L;
    /** SigV4 presigned URLs are valid for at most seven days. */
    private static final long MAX_EXPIRES_SECONDS = 7 * 24 * 3600L;
    private static final DateTimeFormatter AMZ_DATE = DateTimeFormatter.ofPattern("uuuuMMdd'T'HHmmss'Z'")
            .withResolverStyle(ResolverStyle.STRICT);
    private static final HexFormat HEX = HexFormat.of();
    private static final String EMPTY_PAYLOAD_HASH = HEX.formatHex(sha256(new byte[0]));

    private String accessKeyId;
    private String secretAccessKey;
    private String region;
    private Long maxTokenAgeSeconds;
    private Path logFile;

    @Override
    public void configure(Map<String, ?> configs, String saslMechanism, List<AppConfigurationEntry> jaasConfigEntries) {
        if (!"OAUTHBEARER".equals(saslMechanism)) {
            throw new ConfigException("MskIamValidator only handles OAUTHBEARER, not " + saslMechanism);
        }
        if (jaasConfigEntries == null || jaasConfigEntries.size() != 1) {
            throw new ConfigException("MskIamValidator needs exactly one JAAS login module entry for its listener");
        }
        Map<String, ?> options = jaasConfigEntries.get(0).getOptions();
        accessKeyId = required(options, "accessKeyId");
        secretAccessKey = required(options, "secretAccessKey");
        region = required(options, "region");
        String maxAge = optional(options, "maxTokenAgeSeconds");
        if (maxAge != null) {
            try {
                maxTokenAgeSeconds = Long.parseLong(maxAge.trim());
            } catch (NumberFormatException e) {
                maxTokenAgeSeconds = -1L;
            }
            if (maxTokenAgeSeconds <= 0) {
                throw new ConfigException("MskIamValidator: JAAS option maxTokenAgeSeconds must be a positive number of seconds, not \"" + maxAge + "\"");
            }
        }
        String log = optional(options, "logFile");
        logFile = log == null ? null : Path.of(log);
    }

    private static String optional(Map<String, ?> options, String name) {
        Object value = options.get(name);
        return value == null || value.toString().isBlank() ? null : value.toString();
    }

    private static String required(Map<String, ?> options, String name) {
        String value = optional(options, name);
        if (value == null) {
            throw new ConfigException("MskIamValidator: JAAS option " + name + " is required (accessKeyId, secretAccessKey and region must all be set)");
        }
        return value;
    }

    @Override
    public void handle(Callback[] callbacks) throws IOException, UnsupportedCallbackException {
        if (accessKeyId == null) {
            throw new IllegalStateException("MskIamValidator used before configure()");
        }
        for (Callback callback : callbacks) {
            if (callback instanceof OAuthBearerValidatorCallback validation) {
                validate(validation);
            } else if (callback instanceof OAuthBearerExtensionsValidatorCallback extensions) {
                // As Kafka's own validators do: every extension the client sent is accepted.
                extensions.inputExtensions().map().keySet().forEach(extensions::valid);
            } else {
                throw new UnsupportedCallbackException(callback);
            }
        }
    }

    @Override
    public void close() {
    }

    private void validate(OAuthBearerValidatorCallback callback) {
        String token = callback.tokenValue();
        try {
            IamToken accepted = check(token, System.currentTimeMillis());
            callback.token(accepted);
            record("accepted " + accepted.principalName() + " " + fingerprint(token) + " " + accepted.lifetimeMs());
        } catch (Refused refused) {
            record("refused " + refused.getMessage());
            callback.error("invalid_token", null, null);
        } catch (RuntimeException e) {
            record("refused malformed token (" + e.getClass().getSimpleName() + ")");
            callback.error("invalid_token", null, null);
        }
    }

    /** Checks a token at {@code nowMs} and returns what the session may use. */
    IamToken check(String token, long nowMs) throws Refused {
        if (token == null || token.isEmpty()) {
            throw new Refused("malformed: empty token");
        }
        String url;
        try {
            url = new String(Base64.getUrlDecoder().decode(token), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            throw new Refused("malformed: token is not base64url");
        }
        URI uri;
        try {
            uri = new URI(url);
        } catch (URISyntaxException e) {
            throw new Refused("malformed: token is not a URL");
        }
        String expectedHost = "kafka." + region + ".amazonaws.com";
        if (!"https".equals(uri.getScheme()) || uri.getRawUserInfo() != null || uri.getPort() != -1
                || uri.getRawFragment() != null || uri.getHost() == null) {
            throw new Refused("malformed: token is not an https URL for a host");
        }
        if (!expectedHost.equals(uri.getHost())) {
            throw new Refused("region: host " + uri.getHost() + " is not " + expectedHost);
        }
        String path = uri.getRawPath();
        if (path != null && !path.isEmpty() && !path.equals("/")) {
            throw new Refused("malformed: URL path " + path + " is not /");
        }
        Map<String, String> params = queryParameters(uri.getRawQuery());

        String action = params.get("Action");
        if (!ACTION.equals(action)) {
            throw new Refused("action: " + action + " is not " + ACTION);
        }
        String algorithm = params.get("X-Amz-Algorithm");
        if (!ALGORITHM.equals(algorithm)) {
            throw new Refused("algorithm: " + algorithm + " is not " + ALGORITHM);
        }
        String amzDate = params.get("X-Amz-Date");
        long signedAtMs;
        try {
            signedAtMs = LocalDateTime.parse(amzDate == null ? "" : amzDate, AMZ_DATE)
                    .toInstant(ZoneOffset.UTC).toEpochMilli();
        } catch (DateTimeParseException e) {
            throw new Refused("date: X-Amz-Date " + amzDate + " is not yyyyMMddTHHmmssZ");
        }
        String day = amzDate.substring(0, 8);

        String credential = params.get("X-Amz-Credential");
        if (credential == null) {
            throw new Refused("credential: no X-Amz-Credential");
        }
        String[] scope = credential.split("/", -1);
        if (scope.length != 5) {
            throw new Refused("credential: " + credential + " is not <key>/<day>/<region>/<service>/aws4_request");
        }
        if (!accessKeyId.equals(scope[0])) {
            throw new Refused("credential: unknown access key id " + scope[0]);
        }
        if (!day.equals(scope[1])) {
            throw new Refused("credential: scope day " + scope[1] + " does not match X-Amz-Date " + amzDate);
        }
        if (!region.equals(scope[2])) {
            throw new Refused("credential: scope region " + scope[2] + " is not " + region);
        }
        if (!SERVICE.equals(scope[3])) {
            throw new Refused("credential: scope service " + scope[3] + " is not " + SERVICE);
        }
        if (!TERMINATOR.equals(scope[4])) {
            throw new Refused("credential: scope ends in " + scope[4] + ", not " + TERMINATOR);
        }
        String signedHeaders = params.get("X-Amz-SignedHeaders");
        if (!"host".equals(signedHeaders)) {
            throw new Refused("signed headers: " + signedHeaders + " is not host");
        }
        long expiresSeconds;
        try {
            expiresSeconds = Long.parseLong(String.valueOf(params.get("X-Amz-Expires")));
        } catch (NumberFormatException e) {
            expiresSeconds = -1;
        }
        if (expiresSeconds <= 0 || expiresSeconds > MAX_EXPIRES_SECONDS) {
            throw new Refused("expires: X-Amz-Expires " + params.get("X-Amz-Expires") + " is not 1.." + MAX_EXPIRES_SECONDS);
        }

        String signature = params.get("X-Amz-Signature");
        if (signature == null || signature.isEmpty()) {
            throw new Refused("signature: no X-Amz-Signature");
        }
        String expected = signature(params, expectedHost, amzDate, day);
        if (!MessageDigest.isEqual(expected.getBytes(StandardCharsets.US_ASCII), signature.getBytes(StandardCharsets.UTF_8))) {
            throw new Refused("signature: X-Amz-Signature does not match (wrong secret key, or the URL was altered)");
        }

        if (signedAtMs > nowMs + MAX_FUTURE_SKEW_MS) {
            throw new Refused(String.format("date: X-Amz-Date %s is %.1f s in the future", amzDate, (signedAtMs - nowMs) / 1000.0));
        }
        long lifetimeSeconds = maxTokenAgeSeconds == null ? expiresSeconds : Math.min(expiresSeconds, maxTokenAgeSeconds);
        long expiryMs = signedAtMs + lifetimeSeconds * 1000;
        if (nowMs >= expiryMs) {
            throw new Refused(String.format("expired: signed %.1f s ago, valid for %d s", (nowMs - signedAtMs) / 1000.0, lifetimeSeconds));
        }
        return new IamToken(token, accessKeyId, signedAtMs, expiryMs);
    }

    /**
     * Splits a raw query into decoded parameters, as the signer's URL
     * library reads them (form encoding: {@code +} is a space).
     */
    private static Map<String, String> queryParameters(String rawQuery) throws Refused {
        if (rawQuery == null || rawQuery.isEmpty()) {
            throw new Refused("malformed: token URL has no query");
        }
        Map<String, String> params = new HashMap<>();
        for (String pair : rawQuery.split("&")) {
            if (pair.isEmpty()) {
                continue;
            }
            int eq = pair.indexOf('=');
            String name = eq < 0 ? pair : pair.substring(0, eq);
            String value = eq < 0 ? "" : pair.substring(eq + 1);
            try {
                name = URLDecoder.decode(name, StandardCharsets.UTF_8);
                value = URLDecoder.decode(value, StandardCharsets.UTF_8);
            } catch (IllegalArgumentException e) {
                throw new Refused("malformed: bad percent-encoding in the query");
            }
            if (params.put(name, value) != null) {
                throw new Refused("malformed: parameter " + name + " appears twice");
            }
        }
        return params;
    }

    /**
     * The SigV4 query-string signature the signer computed: every parameter
     * but X-Amz-Signature and User-Agent (added after signing), encoded per
     * RFC 3986 and sorted; only the host header signed; the SHA-256 of the
     * empty body as the payload hash.
     */
    private String signature(Map<String, String> params, String host, String amzDate, String day) {
        List<String> pairs = new ArrayList<>();
        params.forEach((name, value) -> {
            if (!name.equals("X-Amz-Signature") && !name.equals("User-Agent")) {
                pairs.add(uriEncode(name) + "=" + uriEncode(value));
            }
        });
        pairs.sort(null);
        String canonicalRequest = "GET\n/\n" + String.join("&", pairs) + "\nhost:" + host + "\n\nhost\n" + EMPTY_PAYLOAD_HASH;
        String scope = day + "/" + region + "/" + SERVICE + "/" + TERMINATOR;
        String stringToSign = ALGORITHM + "\n" + amzDate + "\n" + scope + "\n"
                + HEX.formatHex(sha256(canonicalRequest.getBytes(StandardCharsets.UTF_8)));
        byte[] key = hmac(("AWS4" + secretAccessKey).getBytes(StandardCharsets.UTF_8), day);
        key = hmac(key, region);
        key = hmac(key, SERVICE);
        key = hmac(key, TERMINATOR);
        return HEX.formatHex(hmac(key, stringToSign));
    }

    /** Percent-encodes all but the RFC 3986 unreserved characters, with upper-case hex. */
    private static String uriEncode(String s) {
        StringBuilder out = new StringBuilder();
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            int c = b & 0xff;
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                    || c == '-' || c == '_' || c == '.' || c == '~') {
                out.append((char) c);
            } else {
                out.append('%').append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
                        .append(Character.toUpperCase(Character.forDigit(c & 0xf, 16)));
            }
        }
        return out.toString();
    }

    private static byte[] hmac(byte[] key, String message) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return mac.doFinal(message.getBytes(StandardCharsets.UTF_8));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 unavailable", e);
        }
    }

    private static byte[] sha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("SHA-256 unavailable", e);
        }
    }

    private static String fingerprint(String token) {
        return HEX.formatHex(sha256(token.getBytes(StandardCharsets.UTF_8))).substring(0, 12);
    }

    private synchronized void record(String line) {
        if (logFile == null) {
            return;
        }
        try {
            Files.writeString(logFile, line + "\n", StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND, StandardOpenOption.WRITE);
        } catch (IOException e) {
            System.err.println("MskIamValidator: cannot write " + logFile + ": " + e.getMessage());
        }
    }

    /** Why a token was refused; the message goes to the log file. */
    static final class Refused extends Exception {
        private static final long serialVersionUID = 1L;

        Refused(String reason) {
            super(reason, null, false, false);
        }
    }

    /** An accepted token: the session ends at {@link #lifetimeMs()}. */
    static final class IamToken implements OAuthBearerToken {
        private final String value;
        private final String principal;
        private final long startMs;
        private final long expiryMs;

        IamToken(String value, String principal, long startMs, long expiryMs) {
            this.value = value;
            this.principal = principal;
            this.startMs = startMs;
            this.expiryMs = expiryMs;
        }

        @Override
        public String value() {
            return value;
        }

        @Override
        public Set<String> scope() {
            return Set.of();
        }

        @Override
        public long lifetimeMs() {
            return expiryMs;
        }

        @Override
        public String principalName() {
            return principal;
        }

        @Override
        public Long startTimeMs() {
            return startMs;
        }

        @Override
        public String toString() {
            return "IamToken(principal=" + principal + ", expires=" + expiryMs + ")";
        }
    }
}
