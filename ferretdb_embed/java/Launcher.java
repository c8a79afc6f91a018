// Starts mongo-java-server (in-memory backend) on the host and port given as arguments.
//
// The server's own main classes bind localhost:27017 only; tests need a free loopback port each,
// so this launcher binds where it is told, prints one line when it listens, and runs until it
// is killed (ferretdb_embed kills it with the process that started it).
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;

public class Launcher {
    public static void main(String[] args) throws Exception {
        MongoServer server = new MongoServer(new MemoryBackend());
        server.bind(args[0], Integer.parseInt(args[1]));
        System.out.println("mongo-java-server listening on " + server.getLocalAddress());
        System.out.flush();
        Thread.currentThread().join();
    }
}
