// A tiny HTTP API for the consumer check (.ci/consumer-check): answers every GET with a small JSON price that
// changes on each request. Run as a file-based app: dotnet run consumer-api.cs -- <port>
using System.Globalization;
using System.Net;
using System.Text;

var port = int.Parse(args[0], CultureInfo.InvariantCulture);
using var listener = new HttpListener();
listener.Prefixes.Add($"http://127.0.0.1:{port}/");
listener.Start();
Console.WriteLine($"consumer-api: listening on 127.0.0.1:{port}");
var requests = 0;
while (true)
{
    var context = await listener.GetContextAsync();
    var body = Encoding.UTF8.GetBytes($"{{\"path\":\"{context.Request.Url?.AbsolutePath}\",\"price\":{100 + Interlocked.Increment(ref requests)}}}");
    context.Response.ContentType = "application/json";
    await context.Response.OutputStream.WriteAsync(body);
    context.Response.Close();
}
