// SPDX-License-Identifier: LGPL-2.1-or-later
// The Java side of batchd's execution-context interoperability test (tests/interop/test-java-interop.py).
// It reads and writes contexts the way Spring Batch 5's DefaultExecutionContextSerializer does: Base64 of an
// ObjectOutputStream holding a java.util.HashMap<String, Object>. No Spring on the class path: the JDK alone.
//
//   java ContextInterop read          Base64 context on stdin; prints one "key<TAB>class<TAB>value" line per
//                                     entry, sorted by key ("null" as class for a null value).
//   java ContextInterop write NAME    prints the Base64 context of the named sample (see sample()); keys are
//                                     put in sorted order into a new HashMap(), which makes the bytes
//                                     reproducible.
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

public class ContextInterop {
    static Map<String, Object> sample(String name) {
        TreeMap<String, Object> m = new TreeMap<>();
        switch (name) {
        case "empty":
            break;
        case "scalars":
            m.put("string", "Hello, wörld");
            m.put("int", 42);
            m.put("long", 5000000000L);
            m.put("double", 1.5);
            m.put("bool", true);
            break;
        case "all":
            m.put("s", "x");
            m.put("i", -7);
            m.put("l", Long.MIN_VALUE);
            m.put("d", -0.25);
            m.put("z", false);
            m.put("f", 2.5f);
            m.put("sh", (short) -300);
            m.put("b", (byte) 100);
            m.put("c", 'é');
            m.put("l2", 3L);            // a second Long: its class descriptor is a back-reference
            m.put("i2", 8);
            m.put("nan", Double.NaN);
            m.put("inf", Double.NEGATIVE_INFINITY);
            m.put("emoji", "\u0000a\uD83D\uDE00");   // NUL and a supplementary character: modified UTF-8
            break;
        case "spring":
            // What a Spring Batch 5 chunk step leaves behind.
            m.put("batch.taskletType", "org.springframework.batch.core.step.item.ChunkOrientedTasklet");
            m.put("batch.stepType", "org.springframework.batch.core.step.tasklet.TaskletStep");
            m.put("FlatFileItemReader.read.count", 25000);
            m.put("batch.version", "5.0.3");
            break;
        case "shared":
            // One Integer object (Integer.valueOf() caches small values) and one interned String used twice:
            // the JDK writes the second use of each as a TC_REFERENCE.
            m.put("a", 1);
            m.put("b", 1);
            m.put("k", "k");
            break;
        case "many":
            for (int i = 0; i < 40; i++)
                m.put("key." + i, (long) i * 1000);
            break;
        case "long-string":
            m.put("big", "y".repeat(70000));
            break;
        case "date":
            m.put("when", new java.util.Date(0));
            break;
        default:
            throw new IllegalArgumentException("unknown sample " + name);
        }
        return m;
    }

    static String show(Object v) {
        if (v instanceof String s) {
            StringBuilder b = new StringBuilder();
            for (char ch : s.toCharArray())
                if (ch < 0x20 || ch > 0x7e)
                    b.append(String.format("\\u%04x", (int) ch));
                else
                    b.append(ch);
            return b.toString();
        }
        if (v instanceof Character c)
            return String.format("\\u%04x", (int) c);
        return String.valueOf(v);
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 1 && args[0].equals("read")) {
            String text = new String(System.in.readAllBytes(), StandardCharsets.US_ASCII).trim();
            byte[] bytes = Base64.getDecoder().decode(text);
            Object o;
            try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes))) {
                o = in.readObject();
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> map = (HashMap<String, Object>) o;
            List<String> lines = new ArrayList<>();
            for (Map.Entry<String, Object> e : new TreeMap<>(map).entrySet()) {
                Object v = e.getValue();
                lines.add(show(e.getKey()) + "\t" + (v == null ? "null" : v.getClass().getName()) + "\t" + show(v));
            }
            for (String l : lines)
                System.out.println(l);
        } else if (args.length == 2 && args[0].equals("write")) {
            HashMap<String, Object> map = new HashMap<>();
            for (Map.Entry<String, Object> e : sample(args[1]).entrySet())
                map.put(e.getKey(), e.getValue());
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
                out.writeObject(map);
            }
            System.out.println(Base64.getEncoder().encodeToString(bytes.toByteArray()));
        } else {
            System.err.println("usage: ContextInterop read | write NAME");
            System.exit(2);
        }
    }
}
