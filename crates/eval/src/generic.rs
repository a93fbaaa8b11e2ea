//! Built-in generic assistant replies: the negative class of the adherence scorer when no
//! base-model replies are at hand, and a deterministic set for tests.
//!
//! Written for this project. Two kinds, on purpose: customer-service replies in a corporate
//! voice about the same topics a shop's persona covers (so the scorer learns the voice, not
//! the topic), and everyday assistant answers on other subjects (what a prompted model drifts
//! back to in a long conversation).

/// Generic replies, none in any particular persona's voice.
pub const GENERIC_REPLIES: &[&str] = &[
    // Customer service in a corporate voice.
    "Thank you for contacting us regarding your recent order. We apologize for any inconvenience this may have caused. Our team will review the issue and get back to you within 3-5 business days.",
    "We appreciate your interest in our products. Unfortunately, we are unable to offer refunds on opened items per our policy. Please let us know if there is anything else we can assist you with.",
    "Dear Customer,\n\nThank you for your inquiry. Your subscription has been updated successfully. If you have any further questions, please do not hesitate to contact us.\n\nBest regards,\nCustomer Support Team",
    "Great question! Coffee freshness depends on several factors:\n\n1. Roast date\n2. Storage conditions\n3. Grind size\n\nFor best results, store your beans in an airtight container away from light and heat.",
    "I'm sorry to hear that your package arrived damaged. As a valued customer, your satisfaction is our top priority. Please provide your order number and a photo of the damage so we can process a replacement.",
    "Certainly! For a drip coffee maker, a medium grind is generally recommended. This allows for optimal extraction during the brewing process. Let me know if you need any other brewing tips!",
    "Thank you for reaching out. We have received your request and a member of our support team will respond shortly. Your ticket number is listed in the confirmation email.",
    "Hello,\n\nWe regret to inform you that the item you requested is currently out of stock. We expect new inventory in the coming weeks. Please check our website for updates.\n\nSincerely,\nThe Sales Department",
    "Absolutely! Here are some popular coffee options for beginners:\n\n- A medium roast blend for balanced flavor\n- A light roast single origin for fruity notes\n- A dark roast for a bold, rich taste\n\nI hope this helps you find the perfect coffee!",
    "We value your feedback and will share it with the relevant team. Customer experience is very important to us, and we are continuously working to improve our products and services.",
    "Dear Sir or Madam,\n\nPlease find attached the invoice for your wholesale order. Payment is due within 30 days of the invoice date. Kindly contact our accounts department with any questions.\n\nKind regards,\nAccounts Receivable",
    "I understand your frustration, and I apologize for the delay. Shipping times may vary due to high demand. You can track your order using the link provided in your shipping confirmation email.",
    "Decaffeinated coffee typically contains a small amount of caffeine, usually between 2 and 15 milligrams per cup. If you have concerns about caffeine intake, we recommend consulting a healthcare professional.",
    "Thank you for your order! Your payment has been processed and your items will be shipped within 2 business days. You will receive a tracking number by email once your order ships.",
    "Our gift cards can be redeemed online at checkout. If your gift card is not working, please verify that the code was entered correctly. If the problem persists, please contact our customer service team.",
    "Hi there! Thanks for your message. Our store hours are Monday through Friday, 9 AM to 5 PM. We are closed on weekends and public holidays. Have a great day!",
    "As per your request, we have canceled your subscription. You will not be charged for future deliveries. We are sad to see you go and hope to serve you again in the future.",
    "There are many ways to brew coffee at home, including pour-over, French press, espresso, and cold brew. Each method produces a different flavor profile. Experiment to find the one that suits your taste!",
    "We apologize for any inconvenience caused by the incorrect item in your shipment. Please return the item using the prepaid label, and we will send the correct product as soon as possible.",
    "Thank you for your interest in a wholesale partnership. Please complete the application form on our website, and our business development team will review your information and contact you.",
    "Hello! I'd be happy to help you with your question about allergens. Our products are processed in a facility that may also handle tree nuts, milk and soy. Please review the label carefully.",
    "Your feedback has been forwarded to our quality assurance department. We take all product concerns seriously and will investigate this matter thoroughly. Thank you for bringing this to our attention.",
    "Sure! Here's a quick summary of our shipping options:\n\n* Standard shipping: 5-7 business days\n* Expedited shipping: 2-3 business days\n* Overnight shipping: next business day\n\nRates are calculated at checkout.",
    "To change your delivery address, please log in to your account, navigate to Account Settings, and select Manage Addresses. Changes will apply to all future orders.",
    "Thank you for your kind words! We are thrilled to hear that you enjoyed your purchase. Reviews like yours mean a lot to our team. We look forward to serving you again.",
    "Unfortunately, we cannot guarantee delivery by a specific date. Delivery times are estimates provided by the carrier and may be affected by weather or other factors beyond our control.",
    "For corporate gifting, we offer bulk pricing on orders of 25 units or more. Please send us the number of recipients, your budget and your preferred delivery date, and we will prepare a custom quote.",
    "If your coffee tastes bitter or flat, several factors could be responsible: the water temperature, the grind size, the brewing time or the age of the beans. Adjusting one variable at a time can help identify the cause.",
    // Everyday assistant answers on other subjects.
    "As an AI language model, I don't have personal opinions, but I can share some general information. Many people enjoy a warm drink on a cold day, and there are plenty of options to choose from.",
    "Here are some tips for making a great chili:\n\n1. Brown the meat well for deeper flavor.\n2. Toast your spices before adding liquids.\n3. Let it simmer for at least an hour.\n4. Season at the end and adjust to taste.\n\nEnjoy your meal!",
    "A slow laptop can be caused by many things, such as too many programs running at startup, insufficient memory, a nearly full hard drive, or malware. Try restarting, closing unused applications, and checking for updates.",
    "Both Mac and Windows laptops have their advantages. Macs are known for their build quality and integration with other Apple devices, while Windows laptops offer a wider range of prices and configurations. Consider your daughter's major and budget.",
    "A Wi-Fi router receives data from your internet connection and transmits it wirelessly using radio waves. Devices such as phones and laptops connect to the router, which directs traffic between them and the internet.",
    "To back up your phone photos, you can use a cloud service such as Google Photos or iCloud, or connect your phone to a computer and copy the files manually. It is a good idea to keep at least two copies in different places.",
    "The capital of Australia is Canberra. Many people assume it is Sydney or Melbourne, but Canberra was chosen as a compromise between the two cities and became the capital in 1913.",
    "Here is a short poem about autumn:\n\nGolden leaves drift slowly down,\nPainting colors on the town.\nCrisp air whispers through the trees,\nAutumn dances on the breeze.",
    "I'd be happy to help you write a cover letter! Start with a strong opening that states the position you are applying for, highlight two or three relevant accomplishments, and close by expressing your enthusiasm for the role.",
    "Predicting the outcome of sporting events is difficult, as many factors can influence the result, including injuries, team form and weather conditions. It's best to follow expert analysis closer to the game.",
    "I don't take sides on political topics. I recommend consulting a variety of reliable news sources and official election information to form your own opinion.",
    "Tiramisu is a classic Italian dessert made with ladyfingers dipped in espresso, layered with a mixture of mascarpone cheese, eggs and sugar, and dusted with cocoa powder. For six servings, you will typically need about four eggs.",
    "Winter weather is difficult to predict months in advance. Long-range forecasts can give a general idea of temperature and precipitation trends, but local conditions can vary significantly.",
    "Artificial intelligence is likely to change many industries, but it may also create new opportunities. Small businesses often succeed because of personal relationships and local knowledge, which are hard to automate.",
    "That's a great question! Research on the health effects of coffee is mixed. Moderate consumption is generally considered safe for most adults, but it's always best to consult your doctor about your specific situation.",
    "There is no scientific evidence that coffee stunts growth. This is a common myth. However, caffeine can affect sleep, so it's a good idea for young people to limit their intake.",
    "Many people find it hard to taste the difference between coffees in a blind test, and that's completely okay! Taste preferences are personal, and the best coffee is the one you enjoy most.",
    "Price differences between products can reflect many factors, including sourcing, production methods, freshness and brand. Ultimately, the choice depends on your budget and priorities.",
    "You're welcome! I'm glad I could help. If you have any more questions in the future, feel free to ask. Have a wonderful day!",
    "Of course! Let me break this down step by step so it's easy to follow. First, gather all the materials you need. Next, follow the instructions in order. Finally, review your work to make sure everything is correct.",
    "Sure, I can help with that. Could you please provide more details about what you are looking for? The more information you share, the better I can tailor my answer to your needs.",
    "Exercise has many benefits for physical and mental health. Adults should aim for at least 150 minutes of moderate aerobic activity per week, along with muscle-strengthening activities on two or more days.",
    "To improve your sleep, try to keep a consistent schedule, limit screen time before bed, avoid heavy meals late in the evening, and keep your bedroom cool, dark and quiet.",
    "In summary, there are several factors to consider before making a decision. Weigh the pros and cons carefully, and don't hesitate to seek advice from an expert if you are unsure.",
    "The French Revolution began in 1789 and led to major political and social changes in France, including the end of the monarchy and the rise of new ideas about citizenship and rights.",
    "Photosynthesis is the process by which plants use sunlight, water and carbon dioxide to produce glucose and oxygen. It takes place mainly in the chloroplasts of leaf cells.",
    "Budgeting starts with tracking your income and expenses. Once you know where your money goes, you can set limits for each category and put aside a portion of your income for savings.",
    "Learning a new language takes time and consistency. Practice a little every day, use language learning apps, listen to podcasts, and try to speak with native speakers whenever possible.",
    "Here's a simple recipe for banana bread: mash three ripe bananas, mix with melted butter, sugar, an egg and vanilla, then fold in flour, baking soda and a pinch of salt. Bake at 350°F for about an hour.",
    "Great choice! Python is an excellent first programming language because of its readable syntax and large community. Start with the basics, such as variables, loops and functions, and build small projects.",
    "Hello! How can I assist you today? Whether you have a question, need help with a task, or just want to chat, I'm here to help.",
    "I'm sorry, but I can't help with that request. If you have another question, I'd be glad to assist.",
];

/// The built-in generic replies as owned strings.
pub fn generic_replies() -> Vec<String> {
    GENERIC_REPLIES.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enough_distinct_replies() {
        let set: std::collections::HashSet<_> = GENERIC_REPLIES.iter().collect();
        assert_eq!(set.len(), GENERIC_REPLIES.len(), "duplicates in the generic set");
        assert!(GENERIC_REPLIES.len() >= 40, "{}", GENERIC_REPLIES.len());
    }
}
